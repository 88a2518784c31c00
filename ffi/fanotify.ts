/**
 * fanotify(7) symbol table and constants (Linux, LP64), for the endpoint DLP
 * guard (src/dlp/endpoint/fanotify.ts): the two fanotify calls, and pread /
 * lseek to read a file through the descriptor an event carries — reading
 * through that descriptor raises no new event, where opening the path again
 * would ask our own listener for permission and wait on itself.
 */

/** The libc symbols of the fanotify guard. */
export const FANOTIFY_SYMBOLS = {
  /** int fanotify_init(unsigned int flags, unsigned int event_f_flags) */
  fanotify_init: { parameters: ["u32", "u32"], result: "i32" },
  /** int fanotify_mark(int fanotify_fd, unsigned int flags, uint64_t mask, int dirfd, const char *pathname) */
  fanotify_mark: { parameters: ["i32", "u32", "u64", "i32", "buffer"], result: "i32" },
  /** ssize_t pread(int fd, void *buf, size_t count, off_t offset) */
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "i32" },
  /** off_t lseek(int fd, off_t offset, int whence) */
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened symbols, typed by FANOTIFY_SYMBOLS. */
export type FanotifyLib = Deno.DynamicLibrary<typeof FANOTIFY_SYMBOLS>["symbols"];

/** fanotify_init: close the group fd on exec. */
export const FAN_CLOEXEC = 0x1;
/** fanotify_init: non-blocking reads. */
export const FAN_NONBLOCK = 0x2;
/** fanotify_init: permission events before access to content. */
export const FAN_CLASS_CONTENT = 0x4;
/** fanotify_mark: add to the mark. */
export const FAN_MARK_ADD = 0x1;
/** fanotify_mark: remove from the mark. */
export const FAN_MARK_REMOVE = 0x2;
/** fanotify_mark: mark the whole mount of the path. */
export const FAN_MARK_MOUNT = 0x10;
/** Event: a file opened for writing was closed. */
export const FAN_CLOSE_WRITE = 0x8;
/** Event: permission to open a file. */
export const FAN_OPEN_PERM = 0x10000;
/** Event: the queue overflowed and events were lost. */
export const FAN_Q_OVERFLOW = 0x4000;
/** Response: allow the access. */
export const FAN_ALLOW = 0x1;
/** Response: deny the access (the caller gets EPERM). */
export const FAN_DENY = 0x2;
/** Version of struct fanotify_event_metadata this layout describes. */
export const FANOTIFY_METADATA_VERSION = 3;
/** struct fanotify_event_metadata { u32 event_len; u8 vers; u8 reserved; u16 metadata_len; u64 mask; s32 fd; s32 pid; } */
export const EVENT_METADATA_SIZE = 24;
/** struct fanotify_response { s32 fd; u32 response; } */
export const RESPONSE_SIZE = 8;
/** open(2) flags of event descriptors: read only, close on exec. */
export const EVENT_F_FLAGS = 0x80000;
/** dirfd meaning "relative to the working directory". */
export const AT_FDCWD = -100;
/** lseek whence: from the end. */
export const SEEK_END = 2;
/** poll(2): urgent data; /proc/self/mountinfo signals a mount table change with it. */
export const POLLPRI = 0x2;
