import type { Metadata } from 'next';
import { AdminHome } from './AdminHome';

export const metadata: Metadata = { title: 'Admin' };

export default function AdminPage() {
  return <AdminHome />;
}
