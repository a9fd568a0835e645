// dcmjs ships no type declarations; we use a small part of it and type that part loosely.
declare module 'dcmjs' {
  const dcmjs: any // eslint-disable-line @typescript-eslint/no-explicit-any
  export default dcmjs
}
