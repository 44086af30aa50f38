// The conformance testee, a module of its own so that the published module
// github.com/dsxir/dsxir-checkpoint/go does not carry it.
module github.com/dsxir/dsxir-checkpoint/go/testee

go 1.25.0

require (
	github.com/dsxir/dsxir-checkpoint/go v0.0.0
	google.golang.org/protobuf v1.36.12
)

replace github.com/dsxir/dsxir-checkpoint/go => ../
