// fuse-device-plugin: a minimal Kubernetes device plugin that hands /dev/fuse to the containers that request its
// resource (default lighthouse.dev/fuse), so that a pod can mount FUSE with CAP_SYS_ADMIN alone instead of running
// privileged: the kubelet adds the device to the container's device cgroup, which a hostPath volume never does.
//
// Every container gets the same character device (10:229); the plugin advertises -devices interchangeable slots so
// that many pods can hold one at a time. With -mode, the plugin hands out its own device node with that mode (the
// runtime copies the host node's mode into the container), for hosts whose /dev/fuse is 0600 while the usual udev
// default is 0666. It registers with the kubelet again whenever the kubelet's socket is recreated (a kubelet
// restart forgets every plugin).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const containerPath = "/dev/fuse"

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	devices  []*pluginapi.Device
	hostPath string
	stop     chan struct{}
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the slots once; they never change while the plugin runs.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	select {
	case <-s.Context().Done():
	case <-p.stop:
	}
	return nil
}

func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Devices: []*pluginapi.DeviceSpec{{ContainerPath: containerPath, HostPath: p.hostPath, Permissions: "rw"}},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

// deviceNode returns the node to hand out: the host's device, or a copy of it with the given mode.
func deviceNode(device, stateDir, mode string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(device, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", device, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		return "", fmt.Errorf("%s is not a character device", device)
	}
	if mode == "" {
		return device, nil
	}
	perm, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || perm > 0o777 {
		return "", fmt.Errorf("-mode %q is not an octal permission such as 0666", mode)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return "", err
	}
	node := filepath.Join(stateDir, filepath.Base(device))
	_ = os.Remove(node)
	if err := syscall.Mknod(node, syscall.S_IFCHR|uint32(perm), int(st.Rdev)); err != nil {
		return "", fmt.Errorf("mknod %s: %w", node, err)
	}
	// mknod applies the umask; the mode is what containers will see.
	return node, os.Chmod(node, os.FileMode(perm))
}

func register(socketDir, endpoint, resource string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+filepath.Join(socketDir, filepath.Base(pluginapi.KubeletSocket)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: endpoint, ResourceName: resource,
	})
	return err
}

// serve runs one plugin server until the kubelet's socket is replaced (kubelet restart) or a signal arrives.
// It returns true when it should be started again.
func serve(p *plugin, socketDir, endpoint, resource string, signals <-chan os.Signal) (bool, error) {
	sock := filepath.Join(socketDir, endpoint)
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return false, err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(lis) }()
	defer func() { close(p.stop); srv.Stop(); wg.Wait(); _ = os.Remove(sock) }()

	kubeletSock := filepath.Join(socketDir, filepath.Base(pluginapi.KubeletSocket))
	var registered os.FileInfo
	for {
		if registered == nil {
			if fi, err := os.Stat(kubeletSock); err == nil {
				if err := register(socketDir, endpoint, resource); err != nil {
					log.Printf("Registration failed resource=%s error=%v (retrying)", resource, err)
				} else {
					registered = fi
					log.Printf("Registered with the kubelet resource=%s devices=%d hostPath=%s", resource, len(p.devices), p.hostPath)
				}
			}
		} else if fi, err := os.Stat(kubeletSock); err != nil || !os.SameFile(fi, registered) {
			log.Printf("Kubelet socket replaced; registering again resource=%s", resource)
			return true, nil
		}
		if _, err := os.Stat(sock); err != nil {
			// A restarting kubelet removes every socket in the directory, ours included.
			log.Printf("Plugin socket removed; serving again resource=%s", resource)
			return true, nil
		}
		select {
		case sig := <-signals:
			log.Printf("Stopping signal=%s", sig)
			return false, nil
		case <-time.After(time.Second):
		}
	}
}

func main() {
	resource := flag.String("resource", "lighthouse.dev/fuse", "extended resource name to advertise")
	devices := flag.Int("devices", 64, "number of slots (pods that can hold the device at once)")
	device := flag.String("device", "/dev/fuse", "host device to hand out")
	mode := flag.String("mode", "", "hand out a copy of the device node with this octal mode (e.g. 0666)")
	stateDir := flag.String("state-dir", "/run/lighthouse-fuse-device-plugin", "where the -mode copy lives")
	socketDir := flag.String("socket-dir", pluginapi.DevicePluginPath, "the kubelet's device-plugin directory")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	hostPath, err := deviceNode(*device, *stateDir, *mode)
	if err != nil {
		log.Fatalf("Cannot use device=%s error=%v", *device, err)
	}
	if *devices < 1 {
		log.Fatal(errors.New("-devices must be at least 1"))
	}
	slots := make([]*pluginapi.Device, *devices)
	for i := range slots {
		slots[i] = &pluginapi.Device{ID: fmt.Sprintf("fuse-%d", i), Health: pluginapi.Healthy}
	}
	endpoint := "lighthouse-fuse.sock"
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	for {
		p := &plugin{devices: slots, hostPath: hostPath, stop: make(chan struct{})}
		again, err := serve(p, *socketDir, endpoint, *resource, signals)
		if err != nil {
			log.Fatalf("Serving failed error=%v", err)
		}
		if !again {
			return
		}
	}
}
