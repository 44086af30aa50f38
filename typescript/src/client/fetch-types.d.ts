// The declarations of @connectrpc/connect name the fetch type HeadersInit,
// which the "DOM" lib declares and @types/node does not (it declares Headers,
// whose constructor takes one). This package compiles without the DOM lib, so
// the type is declared here, for its own compilation only: a .d.ts file is not
// emitted, and the declarations the package ships never import
// @connectrpc/connect.
type HeadersInit = NonNullable<ConstructorParameters<typeof Headers>[0]>;
