import type { Metadata } from 'next';
import { Overview } from '@/app/(main)/_overview/Overview';

export const metadata: Metadata = { title: 'Overview' };

export default function OverviewPage() {
  return <Overview />;
}
