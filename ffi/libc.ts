/**
 * libc symbol table and the C constants and struct layouts the TUN device and
 * the UDP socket need (Linux, LP64: x86_64 and aarch64 share these layouts).
 *
 * Nothing here opens the library or holds a pointer: src/net/errno.ts opens
 * it lazily and the classes in src/tun and src/net own the file descriptors.
 * Every `ssize_t` result is declared `i32`: a 64-bit result would come back
 * as a bigint, which is slow, and no single read or write here exceeds 2 GiB.
 */

/** The libc symbols the data plane calls. */
export const LIBC_SYMBOLS = {
  /** int open(const char *path, int flags, mode_t mode) */
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /** int ioctl(int fd, unsigned long request, void *arg) */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** int ioctl(int fd, unsigned long request, unsigned long value) — requests that take a value (TUNSETOFFLOAD) */
  ioctl_val: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count) */
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  /** ssize_t readv(int fd, const struct iovec *iov, int iovcnt) */
  readv: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** ssize_t writev(int fd, const struct iovec *iov, int iovcnt) */
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout) — synchronous, for timeout 0 */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout) — on a worker thread, for real waits */
  poll_nb: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *mask) — synchronous, sub-millisecond waits */
  ppoll: { parameters: ["buffer", "u64", "buffer", "pointer"], result: "i32" },
  /** int fcntl(int fd, int cmd, int arg) */
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int socket(int domain, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int fd, const struct sockaddr *addr, socklen_t len) */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int connect(int fd, const struct sockaddr *addr, socklen_t len) */
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int getsockname(int fd, struct sockaddr *addr, socklen_t *len) */
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /** int setsockopt(int fd, int level, int name, const void *val, socklen_t len) */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /** int getsockopt(int fd, int level, int name, void *val, socklen_t *len) */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /** ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen) */
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  /** ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen) */
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  /** int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags) */
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  /** int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout) */
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  /** int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** int *__errno_location(void) — the calling thread's errno */
  __errno_location: { parameters: [], result: "pointer" },
  /** char *strerror(int errnum) */
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc, typed by LIBC_SYMBOLS. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

// open(2) / fcntl(2)
/** open(2): read and write. */
export const O_RDWR = 0x2;
/** open(2)/fcntl(2): non-blocking I/O. */
export const O_NONBLOCK = 0x800;
/** open(2): close on exec. */
export const O_CLOEXEC = 0x80000;
/** fcntl(2): get file status flags. */
export const F_GETFL = 3;
/** fcntl(2): set file status flags. */
export const F_SETFL = 4;

// poll(2): struct pollfd { int fd; short events; short revents; } = 8 bytes
/** Size of struct pollfd. */
export const POLLFD_SIZE = 8;
/** poll(2): data to read. */
export const POLLIN = 0x1;
/** poll(2): writing will not block. */
export const POLLOUT = 0x4;
/** poll(2): error condition. */
export const POLLERR = 0x8;
/** poll(2): hang up. */
export const POLLHUP = 0x10;
/** poll(2): fd not open. */
export const POLLNVAL = 0x20;

// eventfd(2)
/** eventfd(2): non-blocking. */
export const EFD_NONBLOCK = 0x800;
/** eventfd(2): close on exec. */
export const EFD_CLOEXEC = 0x80000;

// TUN: struct ifreq { char ifr_name[16]; union { short flags; int mtu; ... } } = 40 bytes
/** Size of struct ifreq. */
export const IFREQ_SIZE = 40;
/** Offset of ifr_flags / ifr_mtu inside struct ifreq. */
export const IFREQ_DATA = 16;
/** Longest interface name (IFNAMSIZ - 1). */
export const IFNAMSIZ_MAX = 15;
/** ioctl: _IOW('T', 202, int), attach a TUN fd to an interface. */
export const TUNSETIFF = 0x400454ca;
/** TUN flag: layer-3 device. */
export const IFF_TUN = 0x0001;
/** TUN flag: no 4-byte packet-information header. */
export const IFF_NO_PI = 0x1000;
/** TUN flag: every read and write starts with a struct virtio_net_hdr (offloads). */
export const IFF_VNET_HDR = 0x4000;
/** ioctl: _IOR('T', 210, unsigned int), read back the TUN flags. */
export const TUNGETIFF = 0x800454d2;
/** ioctl: _IOW('T', 208, unsigned int), offloads the kernel may hand us (TUN_F_*). */
export const TUNSETOFFLOAD = 0x400454d0;
/** ioctl: _IOW('T', 216, int), size of the virtio_net_hdr on reads and writes. */
export const TUNSETVNETHDRSZ = 0x400454d8;
/** TUNSETOFFLOAD: we complete partial checksums (CHECKSUM_PARTIAL). */
export const TUN_F_CSUM = 0x01;
/** TUNSETOFFLOAD: we segment TCP over IPv4 super-packets. */
export const TUN_F_TSO4 = 0x02;
/** TUNSETOFFLOAD: we segment TCP over IPv6 super-packets. */
export const TUN_F_TSO6 = 0x04;
/** TUNSETOFFLOAD: we segment UDP over IPv4 super-packets (Linux 6.2+). */
export const TUN_F_USO4 = 0x20;
/** TUNSETOFFLOAD: we segment UDP over IPv6 super-packets (Linux 6.2+). */
export const TUN_F_USO6 = 0x40;
/** ioctl: get interface flags. */
export const SIOCGIFFLAGS = 0x8913;
/** ioctl: set interface flags. */
export const SIOCSIFFLAGS = 0x8914;
/** ioctl: get interface MTU. */
export const SIOCGIFMTU = 0x8921;
/** ioctl: set interface MTU. */
export const SIOCSIFMTU = 0x8922;
/** Interface flag: administratively up. */
export const IFF_UP = 0x1;

// sockets
/** Address family IPv4. */
export const AF_INET = 2;
/** Address family IPv6. */
export const AF_INET6 = 10;
/** Datagram socket. */
export const SOCK_DGRAM = 2;
/** socket(2) type flag: non-blocking. */
export const SOCK_NONBLOCK = 0x800;
/** socket(2) type flag: close on exec. */
export const SOCK_CLOEXEC = 0x80000;
/** send/recv flag: do not block. */
export const MSG_DONTWAIT = 0x40;
/** Socket-level options. */
export const SOL_SOCKET = 1;
/** SOL_SOCKET: allow address reuse. */
export const SO_REUSEADDR = 2;
/** SOL_SOCKET: send buffer size. */
export const SO_SNDBUF = 7;
/** SOL_SOCKET: receive buffer size. */
export const SO_RCVBUF = 8;
/** SOL_SOCKET: bind to a device by name. */
export const SO_BINDTODEVICE = 25;
/** SOL_SOCKET: send buffer size above rmem_max (CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
/** SOL_SOCKET: receive buffer size above rmem_max (CAP_NET_ADMIN). */
export const SO_RCVBUFFORCE = 33;
/** SOL_SOCKET: firewall mark on outgoing packets. */
export const SO_MARK = 36;
/** IPv6 protocol level. */
export const IPPROTO_IPV6 = 41;
/** UDP protocol level (SOL_UDP). */
export const SOL_UDP = 17;
/** SOL_UDP: segmentation size for UDP GSO sends (a u16 cmsg or an int option). */
export const UDP_SEGMENT = 103;
/** SOL_UDP: let the kernel hand us coalesced datagrams with their segment size (an int cmsg). */
export const UDP_GRO = 104;
/** IPPROTO_IPV6: refuse v4-mapped addresses when 1. */
export const IPV6_V6ONLY = 26;

/** Size of struct sockaddr_in (family u16, port be16, addr[4], zero[8]). */
export const SOCKADDR_IN_SIZE = 16;
/** Size of struct sockaddr_in6 (family u16, port be16, flowinfo u32, addr[16], scope u32). */
export const SOCKADDR_IN6_SIZE = 28;

// struct iovec { void *base; size_t len; } = 16 bytes
/** Size of struct iovec. */
export const IOVEC_SIZE = 16;
// struct mmsghdr { struct msghdr hdr (56 bytes); unsigned msg_len; } = 64 bytes
/** Size of struct mmsghdr. */
export const MMSGHDR_SIZE = 64;
/** Offset of msg_name (void *). */
export const MSG_NAME = 0;
/** Offset of msg_namelen (socklen_t). */
export const MSG_NAMELEN = 8;
/** Offset of msg_iov (struct iovec *). */
export const MSG_IOV = 16;
/** Offset of msg_iovlen (size_t). */
export const MSG_IOVLEN = 24;
/** Offset of msg_control (void *). */
export const MSG_CONTROL = 32;
/** Offset of msg_controllen (size_t). */
export const MSG_CONTROLLEN = 40;
/** Offset of msg_flags (int). */
export const MSG_FLAGS = 48;
/** Offset of mmsghdr.msg_len (unsigned). */
export const MSG_LEN = 56;
/** msg_flags: control data was truncated. */
export const MSG_CTRUNC = 0x8;
// struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } = 16 bytes, data aligned to 8
/** Size of struct cmsghdr (CMSG_LEN(0)). */
export const CMSGHDR_SIZE = 16;
/** CMSG_SPACE(sizeof(int)): room for one int-sized control message. */
export const CMSG_SPACE_INT = 24;
// struct timespec { time_t tv_sec; long tv_nsec; } = 16 bytes
/** Size of struct timespec. */
export const TIMESPEC_SIZE = 16;

// errno values
/** Operation not permitted. */
export const EPERM = 1;
/** Interrupted system call. */
export const EINTR = 4;
/** I/O error (a UDP GSO send through a device without checksum offload). */
export const EIO = 5;
/** Bad file descriptor. */
export const EBADF = 9;
/** Try again (would block). */
export const EAGAIN = 11;
/** Invalid argument. */
export const EINVAL = 22;
/** Message too long. */
export const EMSGSIZE = 90;
/** No buffer space available. */
export const ENOBUFS = 105;
