import type { Metadata } from 'next';
import { TokensAdmin } from './TokensAdmin';

export const metadata: Metadata = { title: 'Agent tokens' };

export default function Page() {
  return <TokensAdmin />;
}
