import type { Metadata } from 'next';
import { RulesEditor } from './RulesEditor';

export const metadata: Metadata = { title: 'Alert rules' };

export default function RulesPage() {
  return <RulesEditor />;
}
