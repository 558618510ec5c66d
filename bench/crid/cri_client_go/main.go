// Command cri_client_go times CRI List and Status RPCs from a Go gRPC client, as the
// kubelet and crictl call them: one connection over the unix socket, a context with a
// deadline per call, every answer decoded into the generated Go messages.
//
// bench/crid/list_status.py --go builds it (bench/crid/_go_client.py, from Debian's Go
// packages) and runs it against the crid it populated; it prints each RPC's per-call
// milliseconds as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const service = "/runtime.v1.RuntimeService/"

// codec is gRPC's proto codec written against the protobuf API the generated messages
// use (google.golang.org/protobuf): Debian's grpc-go 1.33 would go through the older
// github.com/golang/protobuf, which cannot decode them.
type codec struct{}

func (codec) Marshal(v interface{}) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (codec) Unmarshal(data []byte, v interface{}) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (codec) Name() string { return "proto" }

type call struct {
	name   string
	method string
	stream bool
	req    proto.Message
	resp   func() proto.Message
}

func main() {
	socket := flag.String("socket", "", "crid's CRI socket")
	calls := flag.Int("calls", 1000, "calls per RPC")
	warm := flag.Int("warm", 20, "untimed calls per RPC first (flow-control windows grow)")
	pod := flag.String("pod", "", "a pod id for PodSandboxStatus")
	ctr := flag.String("container", "", "a container id for ContainerStatus")
	flag.Parse()

	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", addr)
	}
	conn, err := grpc.Dial(*socket, grpc.WithInsecure(), grpc.WithContextDialer(dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.ForceCodec(codec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()

	rpcs := []call{
		{"Version", "Version", false, &cri.VersionRequest{}, func() proto.Message { return &cri.VersionResponse{} }},
		{"Status", "Status", false, &cri.StatusRequest{}, func() proto.Message { return &cri.StatusResponse{} }},
		{"ListPodSandboxMetrics", "ListPodSandboxMetrics", false, &cri.ListPodSandboxMetricsRequest{}, func() proto.Message { return &cri.ListPodSandboxMetricsResponse{} }},
		{"ListMetricDescriptors", "ListMetricDescriptors", false, &cri.ListMetricDescriptorsRequest{}, func() proto.Message { return &cri.ListMetricDescriptorsResponse{} }},
		{"ListPodSandbox", "ListPodSandbox", false, &cri.ListPodSandboxRequest{}, func() proto.Message { return &cri.ListPodSandboxResponse{} }},
		{"ListContainers", "ListContainers", false, &cri.ListContainersRequest{}, func() proto.Message { return &cri.ListContainersResponse{} }},
		{"PodSandboxStatus", "PodSandboxStatus", false, &cri.PodSandboxStatusRequest{PodSandboxId: *pod}, func() proto.Message { return &cri.PodSandboxStatusResponse{} }},
		{"ContainerStatus", "ContainerStatus", false, &cri.ContainerStatusRequest{ContainerId: *ctr}, func() proto.Message { return &cri.ContainerStatusResponse{} }},
		{"ListContainerStats", "ListContainerStats", false, &cri.ListContainerStatsRequest{}, func() proto.Message { return &cri.ListContainerStatsResponse{} }},
		{"ListPodSandboxStats", "ListPodSandboxStats", false, &cri.ListPodSandboxStatsRequest{}, func() proto.Message { return &cri.ListPodSandboxStatsResponse{} }},
		{"ContainerStats (one)", "ContainerStats", false, &cri.ContainerStatsRequest{ContainerId: *ctr}, func() proto.Message { return &cri.ContainerStatsResponse{} }},
		{"StreamPodSandboxes", "StreamPodSandboxes", true, &cri.StreamPodSandboxesRequest{}, func() proto.Message { return &cri.StreamPodSandboxesResponse{} }},
		{"StreamContainers", "StreamContainers", true, &cri.StreamContainersRequest{}, func() proto.Message { return &cri.StreamContainersResponse{} }},
	}

	one := func(c call) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !c.stream {
			return conn.Invoke(ctx, service+c.method, c.req, c.resp())
		}
		desc := &grpc.StreamDesc{StreamName: c.method, ServerStreams: true}
		s, err := conn.NewStream(ctx, desc, service+c.method)
		if err != nil {
			return err
		}
		if err := s.SendMsg(c.req); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		for {
			if err := s.RecvMsg(c.resp()); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	}

	for i := 0; i < 50; i++ { // warm the connection up
		if err := one(rpcs[0]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	out := map[string][]float64{}
	order := []string{}
	for _, c := range rpcs {
		samples := make([]float64, 0, *calls)
		for i := 0; i < *warm+*calls; i++ {
			started := time.Now()
			if err := one(c); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
				os.Exit(1)
			}
			if i >= *warm {
				samples = append(samples, float64(time.Since(started).Nanoseconds())/1e6)
			}
		}
		out[c.name] = samples
		order = append(order, c.name)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"order": order, "samples": out})
}
