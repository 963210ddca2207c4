'use client';
import { SegmentError } from '@/components/ErrorView';

export default function ErrorAlerts({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return <SegmentError error={error} reset={reset} where="the alerts page" />;
}
