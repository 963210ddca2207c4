import type { Metadata } from 'next';
import { NodeView } from '@/components/NodeView';
import { paramToId } from '@/lib/ui/route';

type Params = Promise<{ id: string[] }>;

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  return { title: `Node ${paramToId((await params).id)}` };
}

export default async function NodePage({ params }: { params: Params }) {
  const id = paramToId((await params).id);
  return <NodeView key={id} nodeId={id} />;
}
