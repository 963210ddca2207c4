import type { Metadata } from 'next';
import Link from 'next/link';
import { NotFoundView } from '@/components/ErrorView';

export const metadata: Metadata = { title: 'Not found' };

/** Outside the signed-in pages (e.g. under /login/…): the same themed page, with the brand as a way home. */
export default function RootNotFound() {
  return (
    <div className="standalone">
      <Link href="/" className="brand">
        <span className="brand-mark" aria-hidden="true">
          ◆
        </span>{' '}
        rdmaq
      </Link>
      <NotFoundView />
    </div>
  );
}
