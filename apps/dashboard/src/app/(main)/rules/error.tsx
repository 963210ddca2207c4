'use client';
import { SegmentError } from '@/components/ErrorView';

export default function ErrorRules({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return <SegmentError error={error} reset={reset} where="the rules page" />;
}
