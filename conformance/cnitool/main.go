// cnitool, as upstream's, on the libcni Debian ships (1.1.2): add, check and del go through libcni exactly as a
// runtime's calls do; gc and status, which libcni 1.1.2 lacks, exec the plugins of the list as the CNI 1.1 spec
// says. Results are cached under CNI_CACHE_DIR (the caller's own directory), not /var/lib/cni.
//
//	cnitool add|check|del|gc|status <net> [<netns>]
//	env: NETCONFPATH, CNI_PATH, CAP_ARGS, CNI_ARGS, CNI_IFNAME, CNI_CACHE_DIR
package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
)

const defaultNetDir = "/etc/cni/net.d"

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func exitWith(err error) {
	if err == nil {
		os.Exit(0)
	}
	// a plugin's CNI error is printed as the JSON a runtime would log; libcni's wrapping goes to stderr
	var e *types.Error
	if errors.As(err, &e) {
		_ = e.Print()
		fmt.Println()
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// parseArgs is upstream cnitool's CNI_ARGS parser: K=V pairs, neither part empty.
func parseArgs(args string) [][2]string {
	var result [][2]string
	for _, pair := range strings.Split(args, ";") {
		kv := strings.Split(pair, "=")
		if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
			fail("invalid CNI_ARGS pair %q", pair)
		}
		result = append(result, [2]string{kv[0], kv[1]})
	}
	return result
}

// containerIDFor is upstream's: "cnitool-" and the hex of the first 10 bytes of SHA-512 of the netns path.
func containerIDFor(netns string) string {
	s := sha512.Sum512([]byte(netns))
	return fmt.Sprintf("cnitool-%x", s[:10])
}

// cached is the part of libcni's cache entry we read; direct mode writes entries of the same shape.
type cached struct {
	Kind        string          `json:"kind"`
	ContainerID string          `json:"containerId"`
	IfName      string          `json:"ifName"`
	NetworkName string          `json:"networkName"`
	Result      json.RawMessage `json:"result,omitempty"`
}

type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// rememberNetns notes which netns an attachment lives in, for gc's idea of what is still alive.
func rememberNetns(cacheDir string, rt *libcni.RuntimeConf) {
	_ = os.MkdirAll(filepath.Join(cacheDir, "cnitool-netns"), 0o700)
	_ = ioutil.WriteFile(filepath.Join(cacheDir, "cnitool-netns", rt.ContainerID), []byte(rt.NetNS), 0o600)
}

// validAttachments: what the runtime (we) still knows to be alive: cached results of this network whose
// network namespace still exists. We remember each attachment's netns beside libcni's cache.
func validAttachments(cacheDir, network string) []attachment {
	valid := []attachment{}
	files, _ := filepath.Glob(filepath.Join(cacheDir, "results", network+"-*"))
	direct, _ := filepath.Glob(filepath.Join(cacheDir, "cnitool-results", network+"-*"))
	files = append(files, direct...)
	sort.Strings(files)
	for _, f := range files {
		data, err := ioutil.ReadFile(f)
		if err != nil {
			continue
		}
		var c cached
		if json.Unmarshal(data, &c) != nil || c.NetworkName != network {
			continue
		}
		netns, err := ioutil.ReadFile(filepath.Join(cacheDir, "cnitool-netns", c.ContainerID))
		if err != nil {
			continue
		}
		if _, err := os.Stat(string(netns)); err == nil {
			valid = append(valid, attachment{c.ContainerID, c.IfName})
		} else {
			_ = os.Remove(f) // the runtime forgets what it garbage-collects
		}
	}
	return valid
}

// execEach runs `command` on every plugin of the list with the CNI 1.1 per-plugin config.
func execEach(ctx context.Context, list *libcni.NetworkConfigList, paths []string, command string, extra map[string]interface{}) error {
	for _, plugin := range list.Plugins {
		values := map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion}
		for k, v := range extra {
			values[k] = v
		}
		conf, err := libcni.InjectConf(plugin, values)
		if err != nil {
			return err
		}
		exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}
		path, err := exec.FindInPath(plugin.Network.Type, paths)
		if err != nil {
			return err
		}
		args := &invoke.Args{Command: command, Path: strings.Join(paths, string(os.PathListSeparator))}
		if err := invoke.ExecPluginWithoutResult(ctx, path, conf.Bytes, args, exec); err != nil {
			return err
		}
	}
	return nil
}

// libcni 1.1.2 parses results up to 1.0.0. A 1.1.0 list is driven directly, as libcni >= 1.2 does: each plugin
// gets name, cniVersion, runtimeConfig for the capabilities it declares, and the previous result; DEL runs the
// list backwards; the ADD result is cached for CHECK and DEL.
func direct(ctx context.Context, command string, list *libcni.NetworkConfigList, paths []string, rt *libcni.RuntimeConf, cacheDir string) error {
	cacheFile := filepath.Join(cacheDir, "cnitool-results", fmt.Sprintf("%s-%s-%s", list.Name, rt.ContainerID, rt.IfName))
	var prev []byte
	if command != "ADD" {
		var entry cached
		if data, err := ioutil.ReadFile(cacheFile); err == nil && json.Unmarshal(data, &entry) == nil {
			prev = entry.Result
		}
	}
	plugins := append([]*libcni.NetworkConfig{}, list.Plugins...)
	if command == "DEL" {
		for i, j := 0, len(plugins)-1; i < j; i, j = i+1, j-1 {
			plugins[i], plugins[j] = plugins[j], plugins[i]
		}
	}
	args := &invoke.Args{Command: command, ContainerID: rt.ContainerID, NetNS: rt.NetNS, PluginArgs: rt.Args,
		IfName: rt.IfName, Path: strings.Join(paths, string(os.PathListSeparator))}
	raw := &invoke.RawExec{Stderr: os.Stderr}
	for _, plugin := range plugins {
		values := map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion}
		runtimeConfig := map[string]interface{}{}
		for capability, on := range plugin.Network.Capabilities {
			if v, ok := rt.CapabilityArgs[capability]; on && ok {
				runtimeConfig[capability] = v
			}
		}
		if len(runtimeConfig) > 0 {
			values["runtimeConfig"] = runtimeConfig
		}
		if len(prev) > 0 {
			values["prevResult"] = json.RawMessage(prev)
		}
		conf, err := libcni.InjectConf(plugin, values)
		if err != nil {
			return err
		}
		path, err := invoke.FindInPath(plugin.Network.Type, paths)
		if err != nil {
			return err
		}
		out, err := raw.ExecPlugin(ctx, path, conf.Bytes, args.AsEnv())
		if err != nil {
			return err
		}
		if command == "ADD" {
			prev = bytes.TrimSpace(out)
		}
	}
	switch command {
	case "ADD":
		entry, _ := json.Marshal(cached{"cniCacheV1", rt.ContainerID, rt.IfName, list.Name, json.RawMessage(prev)})
		_ = os.MkdirAll(filepath.Dir(cacheFile), 0o700)
		if err := ioutil.WriteFile(cacheFile, entry, 0o600); err != nil {
			return err
		}
		fmt.Println(string(prev))
	case "DEL":
		_ = os.Remove(cacheFile)
	}
	return nil
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: cnitool add|check|del|gc|status <net> [<netns>]")
	}
	command, network := os.Args[1], os.Args[2]
	netdir := os.Getenv("NETCONFPATH")
	if netdir == "" {
		netdir = defaultNetDir
	}
	list, err := libcni.LoadConfList(netdir, network)
	if err != nil {
		fail("loading network %q from %s: %v", network, netdir, err)
	}
	cacheDir := os.Getenv("CNI_CACHE_DIR")
	if cacheDir == "" {
		fail("CNI_CACHE_DIR must name a directory of the caller's own")
	}
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cninet := libcni.NewCNIConfigWithCacheDir(paths, cacheDir, nil)
	ctx := context.TODO()

	switch command {
	case "gc":
		valid := validAttachments(cacheDir, list.Name)
		exitWith(execEach(ctx, list, paths, "GC", map[string]interface{}{"cni.dev/valid-attachments": valid}))
	case "status":
		exitWith(execEach(ctx, list, paths, "STATUS", nil))
	}

	if len(os.Args) < 4 {
		fail("%s needs a netns path", command)
	}
	netns, err := filepath.Abs(os.Args[3])
	if err != nil {
		fail("netns path: %v", err)
	}
	var capabilityArgs map[string]interface{}
	if v := os.Getenv("CAP_ARGS"); v != "" {
		if err := json.Unmarshal([]byte(v), &capabilityArgs); err != nil {
			fail("CAP_ARGS: %v", err)
		}
	}
	var cniArgs [][2]string
	if v := os.Getenv("CNI_ARGS"); v != "" {
		cniArgs = parseArgs(v)
	}
	ifName, ok := os.LookupEnv("CNI_IFNAME")
	if !ok {
		ifName = "eth0"
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    containerIDFor(netns),
		NetNS:          netns,
		IfName:         ifName,
		Args:           cniArgs,
		CapabilityArgs: capabilityArgs,
	}
	if list.CNIVersion == "1.1.0" {
		err := direct(ctx, strings.ToUpper(command), list, paths, rt, cacheDir)
		if err == nil && command == "add" {
			rememberNetns(cacheDir, rt)
		}
		exitWith(err)
	}
	switch command {
	case "add":
		result, err := cninet.AddNetworkList(ctx, list, rt)
		if err == nil {
			rememberNetns(cacheDir, rt)
			_ = result.Print()
			fmt.Println()
		}
		exitWith(err)
	case "check":
		exitWith(cninet.CheckNetworkList(ctx, list, rt))
	case "del":
		exitWith(cninet.DelNetworkList(ctx, list, rt))
	default:
		fail("unknown command %q", command)
	}
}
