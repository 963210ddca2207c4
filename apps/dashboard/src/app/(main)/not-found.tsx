import type { Metadata } from 'next';
import { NotFoundView } from '@/components/ErrorView';

export const metadata: Metadata = { title: 'Not found' };

/** Unknown addresses inside the dashboard: themed, with the header and navigation around it. */
export default function MainNotFound() {
  return <NotFoundView />;
}
