import { useState } from 'preact/hooks'

/*
 * A combobox (WAI-ARIA 1.2 pattern): type to narrow the list, arrow keys to move, Enter to pick.
 */

let counter = 0

export function TypeAhead<T> ({ label, options, optionLabel, onPick }: { label: string, options: T[], optionLabel: (o: T) => string, onPick: (o: T) => void }): preact.JSX.Element {
  const [id] = useState(() => `ta-${++counter}`)
  const [text, setText] = useState('')
  const [open, setOpen] = useState(false)
  const [active, setActive] = useState(0)
  const words = text.toLowerCase().split(/\s+/).filter((w) => w !== '')
  const shown = options.filter((o) => words.every((w) => optionLabel(o).toLowerCase().includes(w))).slice(0, 8)
  const pick = (o: T): void => { setText(optionLabel(o)); setOpen(false); onPick(o) }
  const key = (e: KeyboardEvent): void => {
    if (e.key === 'ArrowDown') { e.preventDefault(); setOpen(true); setActive((a) => Math.min(a + 1, shown.length - 1)) }
    if (e.key === 'ArrowUp') { e.preventDefault(); setActive((a) => Math.max(a - 1, 0)) }
    if (e.key === 'Enter' && open && shown[active] !== undefined) { e.preventDefault(); pick(shown[active]) }
    if (e.key === 'Escape') setOpen(false)
  }
  return (
    <div class='typeahead'>
      <label for={id}>{label}</label>
      <input id={id} role='combobox' aria-expanded={open} aria-controls={`${id}-list`} aria-autocomplete='list' autocomplete='off'
        aria-activedescendant={open && shown[active] !== undefined ? `${id}-${active}` : undefined}
        value={text} onInput={(e) => { setText((e.currentTarget as HTMLInputElement).value); setOpen(true); setActive(0) }} onKeyDown={key} onBlur={() => { setTimeout(() => { setOpen(false) }, 150) }} />
      {open && shown.length > 0 && (
        <ul id={`${id}-list`} role='listbox'>
          {shown.map((o, i) => (
            <li key={i} id={`${id}-${i}`} role='option' aria-selected={i === active} class={i === active ? 'active' : ''} onMouseDown={(e) => { e.preventDefault(); pick(o) }}>{optionLabel(o)}</li>
          ))}
        </ul>
      )}
    </div>
  )
}
