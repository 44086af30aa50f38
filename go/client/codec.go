package client

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// rawMessage is a message already encoded (a request) or kept encoded (a
// response), so checkpoint bytes cross the wire exactly as
// checkpoint.Encode wrote them and reach checkpoint.Decode exactly as the
// server sent them.
type rawMessage struct{ data []byte }

// codec is the protobuf codec that also passes *rawMessage through as it is.
// Its name is "proto", the content subtype of every gRPC protobuf call.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *rawMessage:
		return m.data, nil
	case proto.Message:
		return proto.Marshal(m)
	default:
		return nil, fmt.Errorf("client codec: cannot marshal %T", v)
	}
}

func (codec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *rawMessage:
		m.data = append([]byte(nil), data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	default:
		return fmt.Errorf("client codec: cannot unmarshal into %T", v)
	}
}
