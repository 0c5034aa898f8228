package listen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqbench/mqbench/broker/conf"
)

// Listen backlogs. Mosquitto's own sockets use 100 (net__socket_listen_tcp
// calls listen(sock, 100)); Go's net.Listen would use somaxconn (4096),
// which lets a connection storm queue far deeper than at a real Mosquitto,
// so sockets are made by hand. libwebsockets, which opens Mosquitto's
// websockets sockets, listens with SOMAXCONN (ss shows 4096 for the
// installed mosquitto's websockets listener).
const (
	mqttBacklog = 100
	wsBacklog   = unix.SOMAXCONN
)

// resolveTimeout bounds the host-name lookup of a listener address.
const resolveTimeout = 10 * time.Second

// bindAll opens the sockets of one listener the way Mosquitto 2.0.11's
// net__socket_listen_tcp does (src/net.c):
//
//   - getaddrinfo(host, port, AI_PASSIVE, family from socket_domain): no host
//     gives 0.0.0.0 then ::, a numeric host itself, a name every address it
//     resolves to; one socket per result, IPV6_V6ONLY on, SO_REUSEADDR on;
//   - socket(2) failing (an address family the kernel lacks) skips that
//     result with a warning, bind(2) or listen(2) failing fails the listener;
//   - bind_interface does not use SO_BINDTODEVICE: Mosquitto looks the
//     interface up with getifaddrs and binds the interface's first address of
//     the result's family instead (net__bind_interface). With an address
//     given too, a different interface address skips that family with a
//     warning; a family the interface has no address for is skipped with a
//     warning; nothing bound at all fails the listener.
//
// Port 0 (an mqbench extension; Mosquitto reads it as a unix socket) takes
// one free port from the first socket and reuses it for the others, so the
// IPv4 and IPv6 sockets of one listener share a port.
func bindAll(l conf.Listener, backlog int) ([]*net.TCPListener, []string, error) {
	ips, err := resolve(l)
	if err != nil {
		return nil, nil, err
	}
	var (
		out      []*net.TCPListener
		warnings []string
		port     = l.Port
	)
	fail := func(err error) ([]*net.TCPListener, []string, error) {
		for _, ln := range out {
			_ = ln.Close()
		}
		return nil, warnings, err
	}
	for _, ip := range ips {
		if l.BindInterface != "" {
			ifIP, warn, err := interfaceAddr(l, ip)
			if err != nil {
				return fail(err)
			}
			if warn != "" {
				warnings = append(warnings, warn)
				continue
			}
			ip = ifIP
		}
		ln, stage, err := bindOne(ip, port, backlog)
		if err != nil {
			if stage == "socket" {
				warnings = append(warnings, fmt.Sprintf("%s: %v", where(l), err))
				continue
			}
			return fail(fmt.Errorf("%s: %w", where(l), err))
		}
		out = append(out, ln)
		if port == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
	}
	if len(out) == 0 {
		if l.BindInterface != "" {
			return fail(fmt.Errorf("%s: bind_interface %s: no address of the interface could be bound (%s)",
				where(l), l.BindInterface, strings.Join(warnings, "; ")))
		}
		return fail(fmt.Errorf("%s: no listening socket could be opened (%s)", where(l), strings.Join(warnings, "; ")))
	}
	return out, warnings, nil
}

// where names a listener in errors: its `listener` line, or the default one.
func where(l conf.Listener) string {
	addr := l.BindAddress
	if addr == "" {
		addr = "all interfaces"
	}
	desc := fmt.Sprintf("listener %d %s", l.Port, addr)
	if l.Default {
		desc = fmt.Sprintf("default listener (port %d, %s)", l.Port, addr)
	}
	if p := l.Line.Place(); p != "" {
		return p + ": " + desc
	}
	return desc
}

// resolve is getaddrinfo(host, AI_PASSIVE) for the listener: the addresses
// in the order they are bound. glibc lists the passive wildcard IPv4 first
// (Mosquitto logs "Opening ipv4 listen socket" before "ipv6").
func resolve(l conf.Listener) ([]net.IPAddr, error) {
	want, err := family(l)
	if err != nil {
		return nil, err
	}
	if l.BindAddress == "" {
		var out []net.IPAddr
		if want != 6 {
			out = append(out, net.IPAddr{IP: net.IPv4zero})
		}
		if want != 4 {
			out = append(out, net.IPAddr{IP: net.IPv6unspecified})
		}
		return out, nil
	}
	host, zone, _ := strings.Cut(l.BindAddress, "%")
	var addrs []net.IPAddr
	if ip := net.ParseIP(host); ip != nil {
		addrs = []net.IPAddr{{IP: ip, Zone: zone}}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		addrs, err = net.DefaultResolver.LookupIPAddr(ctx, l.BindAddress)
		if err != nil {
			return nil, fmt.Errorf("%s: resolving %q: %w", where(l), l.BindAddress, err)
		}
	}
	var out []net.IPAddr
	for _, a := range addrs {
		if f := ipFamily(a.IP); want == 0 || f == want {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %q has no IPv%d address (socket_domain ipv%d)", where(l), l.BindAddress, want, want)
	}
	return out, nil
}

// family is 4, 6 or 0 (both) from socket_domain.
func family(l conf.Listener) (int, error) {
	switch l.SocketDomain {
	case "":
		return 0, nil
	case "ipv4":
		return 4, nil
	case "ipv6":
		return 6, nil
	}
	return 0, fmt.Errorf("%s: invalid socket_domain %q", placeOf(l, "socket_domain"), l.SocketDomain)
}

func ipFamily(ip net.IP) int {
	if ip.To4() != nil {
		return 4
	}
	return 6
}

// interfaceAddr is net__bind_interface: the first address of ip's family on
// the interface named bind_interface (compared case-insensitively, like
// Mosquitto's strcasecmp). A warning (not an error) means "skip this
// family". Go lists an interface's addresses in netlink order, as glibc's
// getifaddrs does; IPv4 alias labels ("eth0:1") are not separate names here.
func interfaceAddr(l conf.Listener, ip net.IPAddr) (net.IPAddr, string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return net.IPAddr{}, "", fmt.Errorf("%s: listing interfaces: %w", placeOf(l, "bind_interface"), err)
	}
	fam := ipFamily(ip.IP)
	for _, ifc := range ifs {
		if !strings.EqualFold(ifc.Name, l.BindInterface) {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return net.IPAddr{}, "", fmt.Errorf("%s: addresses of %s: %w", placeOf(l, "bind_interface"), ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipFamily(ipn.IP) != fam {
				continue
			}
			if l.BindAddress != "" && !ipn.IP.Equal(ip.IP) {
				return net.IPAddr{}, fmt.Sprintf("%s: interface address for %s does not match specified listener address (%s)",
					placeOf(l, "bind_interface"), l.BindInterface, l.BindAddress), nil
			}
			// Only the address is taken, no scope: Mosquitto copies sin6_addr
			// alone, so a link-local first address fails to bind there too.
			return net.IPAddr{IP: ipn.IP}, "", nil
		}
	}
	return net.IPAddr{}, fmt.Sprintf("%s: interface %s does not support IPv%d configuration",
		placeOf(l, "bind_interface"), l.BindInterface, fam), nil
}

// bindOne makes one listening socket by hand (socket, SO_REUSEADDR,
// IPV6_V6ONLY, bind, listen(backlog)) and hands it to the net package. stage
// names the failing system call, so "socket" failures can be skipped as
// Mosquitto skips them.
func bindOne(ip net.IPAddr, port, backlog int) (*net.TCPListener, string, error) {
	addr := net.JoinHostPort(ipString(ip), strconv.Itoa(port))
	var sa unix.Sockaddr
	dom := unix.AF_INET
	if ip4 := ip.IP.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		dom = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip.IP.To16())
		if ip.Zone != "" {
			ifc, err := net.InterfaceByName(ip.Zone)
			if err != nil {
				return nil, "bind", fmt.Errorf("binding %s: zone: %w", addr, err)
			}
			s.ZoneId = uint32(ifc.Index)
		}
		sa = s
	}
	fd, err := unix.Socket(dom, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, "socket", fmt.Errorf("opening an IPv%d socket for %s: %w", ipFamily(ip.IP), addr, err)
	}
	closeFD := func() { _ = unix.Close(fd) }
	// Like Mosquitto, failures to set these are not fatal.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if dom == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		closeFD()
		if errors.Is(err, unix.EACCES) && port < 1024 {
			return nil, "bind", fmt.Errorf("binding %s: %w (a privileged port needs CAP_NET_BIND_SERVICE)", addr, err)
		}
		return nil, "bind", fmt.Errorf("binding %s: %w", addr, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		closeFD()
		return nil, "listen", fmt.Errorf("listening on %s: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), "listener "+addr)
	fl, err := net.FileListener(f)
	_ = f.Close() // FileListener holds its own duplicate
	if err != nil {
		return nil, "listen", fmt.Errorf("listening on %s: %w", addr, err)
	}
	tl, ok := fl.(*net.TCPListener)
	if !ok {
		_ = fl.Close()
		return nil, "listen", fmt.Errorf("listening on %s: not a TCP listener (%T)", addr, fl)
	}
	return tl, "", nil
}

func ipString(ip net.IPAddr) string {
	if ip.Zone != "" {
		return ip.IP.String() + "%" + ip.Zone
	}
	return ip.IP.String()
}

// placeOf is "FILE:LINE: KEY" for a listener key, or the listener when the
// key has no recorded place.
func placeOf(l conf.Listener, key string) string {
	if p := l.Place(key); p != "" {
		return p + ": " + key
	}
	return where(l) + ": " + key
}

// interfaceNamed returns name when it is not an IP address but the exact
// name of a network interface, else "".
func interfaceNamed(name string) string {
	host, _, _ := strings.Cut(name, "%")
	if name == "" || net.ParseIP(host) != nil {
		return ""
	}
	if _, err := net.InterfaceByName(name); err != nil {
		return ""
	}
	return name
}
