import type { Metadata } from 'next';
import { paramToId } from '@/lib/route';
import { NodeView } from './NodeView';

type Params = Promise<{ id: string[] }>;

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  return { title: `Node ${paramToId((await params).id)}` };
}

export default async function NodePage({ params }: { params: Params }) {
  const id = paramToId((await params).id);
  return <NodeView key={id} nodeId={id} />;
}
