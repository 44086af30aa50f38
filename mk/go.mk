# Go binding (go/): code generation, conformance testee and tests.
# Everything runs inside the module with `cd go && go ...` (the testee in its
# own module, go/testee); dependencies come from go.mod/go.sum through the Go
# module proxy.

GO ?= go
GO_ENV := GOFLAGS="-mod=readonly -buildvcs=false"
GO_GEN_DIR := go/dsxir
# A short fuzz run of Decode and of DecodeDelta on every `make test-go`,
# counted in executions:
# a duration (-fuzztime 10s) races Go 1.26's fuzz coordinator at its deadline
# on a loaded machine (golang/go#75804) and fails with "context deadline
# exceeded" though nothing was found. Longer runs: make test-go GO_FUZZTIME=5000000x
GO_FUZZTIME ?= 60000x

GENERATE_TARGETS += generate-go
GENERATED_PATHS += go/dsxir go/testee/conformancev1
TEST_TARGETS += test-go
TESTEE_TARGETS += testee-go

.PHONY: generate-go testee-go test-go go-protoc-gen-go

# The code generators at the versions pinned in go.mod (its `tool` directives):
# protoc-gen-go (google.golang.org/protobuf) and protoc-gen-go-grpc
# (google.golang.org/grpc/cmd/protoc-gen-go-grpc).
go-protoc-gen-go: ## build protoc-gen-go and protoc-gen-go-grpc at the versions of go.mod
	cd go && $(GO_ENV) $(GO) build -o .bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	cd go && $(GO_ENV) $(GO) build -o .bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc

# The conformance protocol (tests/conformance/proto) lands in the testee's
# module, go/testee/conformancev1, outside the published module.
generate-go: tools go-protoc-gen-go ## Go code of every proto (buf.gen.go.yaml)
	rm -f $(GO_GEN_DIR)/*/v1/*.pb.go go/testee/conformancev1/*.pb.go
	$(BUF) generate --template buf.gen.go.yaml

# The testee is a module of its own (go/testee), outside the published module.
testee-go: ## the Go conformance testee
	cd go/testee && $(GO_ENV) $(GO) build -o ../.bin/testee .

# go/client's tests drive the Python server (.venv, from `setup`).
test-go: setup testee-go ## go vet, gofmt, go test and short fuzz runs
	cd go && $(GO_ENV) $(GO) vet ./...
	@cd go && if [ -n "$$(gofmt -l .)" ]; then gofmt -l .; echo "gofmt: files above need formatting"; exit 1; fi
	cd go && $(GO_ENV) $(GO) test -count=1 ./...
	cd go/testee && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) test -count=1 ./...
	cd go && $(GO_ENV) $(GO) test -count=1 -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(GO_FUZZTIME) -fuzzminimizetime 2s ./checkpoint
	cd go && $(GO_ENV) $(GO) test -count=1 -run '^$$' -fuzz '^FuzzDecodeDelta$$' -fuzztime $(GO_FUZZTIME) -fuzzminimizetime 2s ./checkpoint
