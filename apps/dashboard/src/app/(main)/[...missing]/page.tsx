import { notFound } from 'next/navigation';

/**
 * Any address no other page claims lands here, so its not-found page is drawn inside the signed-in layout
 * (header, navigation, firing alerts) instead of a bare page.
 */
export default function Missing(): never {
  notFound();
}
