'use client';
import Link from 'next/link';
import { SegmentError } from '@/components/ErrorView';

/** Errors in the signed-in layout itself (header, live connection) or in pages without their own boundary. */
export default function RootError({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return (
    <div className="standalone">
      <Link href="/" className="brand">
        <span className="brand-mark" aria-hidden="true">
          ◆
        </span>{' '}
        rdmaq
      </Link>
      <SegmentError error={error} reset={reset} where="this page" />
    </div>
  );
}
