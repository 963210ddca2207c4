'use client';
import { SegmentError } from '@/components/ErrorView';

export default function ErrorMain({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return <SegmentError error={error} reset={reset} where="this page" />;
}
