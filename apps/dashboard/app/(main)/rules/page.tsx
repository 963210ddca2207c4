import type { Metadata } from 'next';
import { RulesEditor } from '@/components/admin/RulesEditor';

export const metadata: Metadata = { title: 'Alert rules' };

export default function RulesPage() {
  return <RulesEditor />;
}
