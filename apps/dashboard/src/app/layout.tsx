import type { Metadata, Viewport } from 'next';
import type { ReactNode } from 'react';
import { ThemeRestore } from '@/components/ThemeRestore';
import './globals.css';

export const metadata: Metadata = {
  title: { default: 'rdmaq', template: '%s · rdmaq' },
  description: 'rdmaq cluster dashboard: links, rings, latency and alerts',
};

export const viewport: Viewport = { colorScheme: 'dark', themeColor: '#0d1117' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" data-theme="dark">
      <body>
        <ThemeRestore />
        {children}
      </body>
    </html>
  );
}
