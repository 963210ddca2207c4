'use client';
import { SegmentError } from '@/components/ErrorView';

export default function ErrorNode({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return <SegmentError error={error} reset={reset} where="this node page" />;
}
