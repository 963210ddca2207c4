import type { ReactNode } from 'react';
import { LiveProvider } from '@/components/LiveProvider';
import { Shell } from '@/components/Shell';

/** Every signed-in page: one live connection, the header with navigation, and the firing-alerts banner. */
export default function MainLayout({ children }: { children: ReactNode }) {
  return (
    <LiveProvider>
      <Shell>{children}</Shell>
    </LiveProvider>
  );
}
