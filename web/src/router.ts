import { useEffect, useState } from 'preact/hooks'

/* Hash routes (#/studies/1.2.3): a reload or a shared link opens the same page. */

export interface Route { path: string, parts: string[] }

function current (): Route {
  const path = location.hash.replace(/^#/, '') || '/'
  return { path, parts: path.split('?')[0]!.split('/').filter((p) => p !== '').map(decodeURIComponent) }
}

export function useRoute (): Route {
  const [route, setRoute] = useState(current())
  useEffect(() => {
    const changed = (): void => { setRoute(current()) }
    addEventListener('hashchange', changed)
    return () => { removeEventListener('hashchange', changed) }
  }, [])
  return route
}

export function go (path: string): void {
  location.hash = `#/${path}`
}
