import type { Metadata } from 'next';
import { paramToId } from '@/lib/route';
import { LinkView } from './LinkView';

type Params = Promise<{ key: string[] }>;

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  return { title: `Link ${paramToId((await params).key)}` };
}

export default async function LinkPage({ params }: { params: Params }) {
  const key = paramToId((await params).key);
  return <LinkView key={key} linkKey={key} />;
}
