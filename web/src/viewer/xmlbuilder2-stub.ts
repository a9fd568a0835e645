// vtk.js' XML mesh (VTP) reader and writer import xmlbuilder2, which extends Node's EventEmitter and
// breaks the bundle as it loads ("Class extends value undefined"). The viewer reads no VTK meshes.
export function create (): never {
  throw new Error('xmlbuilder2 is not part of the viewer bundle')
}
