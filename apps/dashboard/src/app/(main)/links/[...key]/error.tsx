'use client';
import { SegmentError } from '@/components/ErrorView';

export default function ErrorLink({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return <SegmentError error={error} reset={reset} where="this link page" />;
}
