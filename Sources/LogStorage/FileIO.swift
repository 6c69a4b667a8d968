#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

// Thin wrappers over POSIX file calls: open/pread/pwrite/fdatasync/ftruncate/rename and the
// directory calls, each turning a failure into `LogStorageError.io(path, errno, operation)`.
// No Foundation: the hot path (append, read, flush) is these calls and nothing else.

/// An open file descriptor, closed when the last reference goes away.
///
/// Segments hand their `FileDescriptor` to readers, who may `pread` after the partition lock is
/// released; reference counting then keeps the descriptor open while a read is in flight, even if
/// the segment is deleted meanwhile (an unlinked file stays readable through an open descriptor).
/// Immutable after init, hence `Sendable`.
final class FileDescriptor: @unchecked Sendable {
    let fd: Int32
    /// The path the file was opened at (for messages; the file may have been renamed since).
    let path: String

    /// Opens (creating if asked) a file for reading and writing.
    init(path: String, create: Bool = true, readOnly: Bool = false) throws(LogStorageError) {
        var flags: Int32 = readOnly ? O_RDONLY : O_RDWR
        if create && !readOnly { flags |= O_CREAT }
        flags |= O_CLOEXEC
        var fd: Int32
        repeat {
            fd = open(path, flags, 0o644)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw .io(path: path, errno: errno, operation: "open") }
        self.fd = fd
        self.path = path
    }

    deinit {
        _ = close(fd)
    }

    /// The file's size from `fstat`.
    func size() throws(LogStorageError) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, errno: errno, operation: "fstat") }
        return Int64(st.st_size)
    }

    /// Reads up to `count` bytes at `offset` straight into the writable bytes of `buffer` (one
    /// copy, from the page cache). Stops early only at end of file. Returns the bytes read.
    @discardableResult
    func read(into buffer: inout ByteBuffer, count: Int, at offset: Int64) throws(LogStorageError) -> Int {
        guard count > 0 else { return 0 }
        var total = 0
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            guard let base = raw.baseAddress else { return 0 }
            while total < count {
                let n = pread(fd, base + total, count - total, off_t(offset + Int64(total)))
                if n > 0 {
                    total += n
                } else if n == 0 {
                    break
                } else if errno == EINTR {
                    continue
                } else {
                    failure = errno
                    break
                }
            }
            return total
        }
        if failure != 0 { throw .io(path: path, errno: failure, operation: "pread") }
        return total
    }

    /// Reads `count` bytes at `offset` into a new buffer (shorter at end of file).
    func read(count: Int, at offset: Int64, allocator: ByteBufferAllocator) throws(LogStorageError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: count)
        try read(into: &buffer, count: count, at: offset)
        return buffer
    }

    /// Writes all of `bytes` at `offset` (retrying short writes and EINTR).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(LogStorageError) {
        guard let base = bytes.baseAddress else { return }
        var written = 0
        while written < bytes.count {
            let n = pwrite(fd, base + written, bytes.count - written, off_t(offset + Int64(written)))
            if n >= 0 {
                written += n
            } else if errno != EINTR {
                throw .io(path: path, errno: errno, operation: "pwrite")
            }
        }
    }

    /// Writes the readable bytes of `buffer` at `offset`: one `pwrite` call for the whole buffer
    /// unless the kernel writes short.
    func write(_ buffer: ByteBuffer, at offset: Int64) throws(LogStorageError) {
        let result: Result<Void, LogStorageError> = buffer.withUnsafeReadableBytes { bytes in
            do throws(LogStorageError) {
                try write(bytes, at: offset)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Writes the readable bytes of `buffer` at `offset`, with the first 16 bytes of each batch
    /// (base offset, batch length, partition leader epoch: outside the CRC) taken from the batch
    /// headers instead of the buffer. The buffer is not modified, so a Produce request's records
    /// go from the request frame to the file without a copy; one `pwritev` per 512 batches.
    func write(_ buffer: ByteBuffer, batches: [AppendBatch], at offset: Int64) throws(LogStorageError) {
        let prefixSize = 16
        var prefixes = [UInt8](repeating: 0, count: batches.count * prefixSize)
        for (i, batch) in batches.enumerated() {
            let base = UInt64(bitPattern: batch.header.baseOffset).bigEndian
            let length = UInt32(bitPattern: batch.header.batchLength).bigEndian
            let epoch = UInt32(bitPattern: batch.header.partitionLeaderEpoch).bigEndian
            withUnsafeBytes(of: base) { prefixes.replaceSubrange(i * 16..<i * 16 + 8, with: $0) }
            withUnsafeBytes(of: length) { prefixes.replaceSubrange(i * 16 + 8..<i * 16 + 12, with: $0) }
            withUnsafeBytes(of: epoch) { prefixes.replaceSubrange(i * 16 + 12..<i * 16 + 16, with: $0) }
        }
        let result: Result<Void, LogStorageError> = buffer.withUnsafeReadableBytes { bytes in
            prefixes.withUnsafeBytes { prefixBytes in
                do throws(LogStorageError) {
                    guard let base = bytes.baseAddress, let prefixBase = prefixBytes.baseAddress else { return .success(()) }
                    var vectors = [iovec]()
                    vectors.reserveCapacity(batches.count * 2)
                    for (i, batch) in batches.enumerated() {
                        let end = i + 1 < batches.count ? batches[i + 1].position : bytes.count
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: prefixBase + i * prefixSize), iov_len: prefixSize))
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: base + batch.position + prefixSize),
                                             iov_len: end - batch.position - prefixSize))
                    }
                    try writeVectors(vectors, at: offset)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }

    /// `pwritev` of all `vectors` (at most 1024 per call), finishing short writes with `pwrite`.
    private func writeVectors(_ vectors: [iovec], at offset: Int64) throws(LogStorageError) {
        var position = offset
        var start = 0
        while start < vectors.count {
            let chunk = Array(vectors[start..<min(start + 1024, vectors.count)])
            let total = chunk.reduce(0) { $0 + $1.iov_len }
            var n: Int
            repeat {
                n = chunk.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress, Int32($0.count), off_t(position)) }
            } while n < 0 && errno == EINTR
            guard n >= 0 else { throw .io(path: path, errno: errno, operation: "pwritev") }
            if n < total {
                // Short write: write what is left of each vector one by one.
                var skipped = 0
                for v in chunk {
                    let len = v.iov_len
                    if skipped + len <= n {
                        skipped += len
                        continue
                    }
                    let from = max(0, n - skipped)
                    if let p = v.iov_base {
                        try write(UnsafeRawBufferPointer(start: p + from, count: len - from), at: position + Int64(skipped + from))
                    }
                    skipped += len
                }
            }
            position += Int64(total)
            start += chunk.count
        }
    }

    func write(_ bytes: [UInt8], at offset: Int64) throws(LogStorageError) {
        let result: Result<Void, LogStorageError> = bytes.withUnsafeBytes { raw in
            do throws(LogStorageError) {
                try write(raw, at: offset)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    func truncate(to size: Int64) throws(LogStorageError) {
        var rc: Int32
        repeat { rc = ftruncate(fd, off_t(size)) } while rc != 0 && errno == EINTR
        guard rc == 0 else { throw .io(path: path, errno: errno, operation: "ftruncate") }
    }

    /// `fdatasync`: the data and the metadata needed to read it (size) reach the disk.
    func dataSync() throws(LogStorageError) {
        var rc: Int32
        #if os(Linux)
        repeat { rc = fdatasync(fd) } while rc != 0 && errno == EINTR
        #else
        repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
        #endif
        guard rc == 0 else { throw .io(path: path, errno: errno, operation: "fdatasync") }
    }

    func sync() throws(LogStorageError) {
        var rc: Int32
        repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
        guard rc == 0 else { throw .io(path: path, errno: errno, operation: "fsync") }
    }
}

/// Directory and whole-file helpers.
enum FileSystem {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    /// The modification time in milliseconds since the epoch.
    static func modificationTimeMillis(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        #if canImport(Darwin)
        return Int64(st.st_mtimespec.tv_sec) * 1000 + Int64(st.st_mtimespec.tv_nsec) / 1_000_000
        #else
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
        #endif
    }

    /// `mkdir -p`.
    static func createDirectory(_ path: String) throws(LogStorageError) {
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if !isDirectory(prefix) {
                if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                    throw .io(path: prefix, errno: errno, operation: "mkdir")
                }
            }
            prefix += "/"
        }
    }

    /// The names in a directory, without `.` and `..`.
    static func listDirectory(_ path: String) throws(LogStorageError) -> [String] {
        guard let dir = opendir(path) else { throw .io(path: path, errno: errno, operation: "opendir") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func rename(_ from: String, to: String) throws(LogStorageError) {
        guard Glibc_rename(from, to) == 0 else { throw .io(path: from, errno: errno, operation: "rename to \(to)") }
    }

    /// Removes a file; a missing file is not an error.
    static func removeFile(_ path: String) throws(LogStorageError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw .io(path: path, errno: errno, operation: "unlink")
        }
    }

    /// `rm -r`.
    static func removeTree(_ path: String) throws(LogStorageError) {
        if isDirectory(path) {
            for name in try listDirectory(path) {
                try removeTree(path + "/" + name)
            }
            if rmdir(path) != 0 && errno != ENOENT {
                throw .io(path: path, errno: errno, operation: "rmdir")
            }
        } else {
            try removeFile(path)
        }
    }

    /// fsyncs a directory, making the creation, rename or removal of its entries durable.
    static func syncDirectory(_ path: String) throws(LogStorageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, errno: errno, operation: "open directory") }
        defer { _ = close(fd) }
        var rc: Int32
        repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
        // Some file systems refuse fsync on directories (EINVAL); nothing more can be done there.
        guard rc == 0 || errno == EINVAL else { throw .io(path: path, errno: errno, operation: "fsync directory") }
    }

    /// The whole file, or nil if it does not exist.
    static func readFile(_ path: String) throws(LogStorageError) -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try FileDescriptor(path: path, create: false, readOnly: true)
        let size = Int(try file.size())
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        try file.read(into: &buffer, count: size, at: 0)
        return Array(buffer.readableBytesView)
    }

    /// Kafka's atomic file replacement: write `<path>.tmp`, fsync it, rename it over `path`, fsync
    /// the directory. A crash leaves either the old file or the new one, never a mix.
    static func writeFileAtomically(_ path: String, bytes: [UInt8], sync: Bool = true) throws(LogStorageError) {
        let tmp = path + ".tmp"
        do {
            let file = try FileDescriptor(path: tmp, create: true)
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            if sync { try file.sync() }
        }
        try rename(tmp, to: path)
        if sync { try syncDirectory(parentDirectory(of: path)) }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

// `rename` is shadowed by `FileSystem.rename` inside the enum.
@inline(__always)
private func Glibc_rename(_ from: String, _ to: String) -> Int32 {
    rename(from, to)
}

/// An advisory exclusive lock on `<dir>/.lock`, as Kafka takes on each log directory so that two
/// brokers never share one. Released when the object is deallocated or `release()` is called.
final class DirectoryLock: @unchecked Sendable {
    private var fd: Int32
    let path: String

    init(directory: String) throws(LogStorageError) {
        path = directory + "/.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, errno: errno, operation: "open lock file") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = errno
            _ = close(fd)
            fd = -1
            if error == EWOULDBLOCK { throw .logDirectoryLocked(path: directory) }
            throw .io(path: path, errno: error, operation: "flock")
        }
    }

    func release() {
        if fd >= 0 {
            _ = flock(fd, LOCK_UN)
            _ = close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

/// Wall-clock milliseconds, as Kafka's `time.milliseconds()`.
public enum LogClock {
    public static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Monotonic milliseconds, for measuring durations.
    static func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The description of an errno value.
func errnoDescription(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// Random bytes from the system generator, hex encoded (for `-delete` directory names).
func randomHex(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef")
    var result = ""
    for _ in 0..<count {
        let byte = UInt8.random(in: 0...255, using: &generator)
        result.append(digits[Int(byte >> 4)])
        result.append(digits[Int(byte & 0xF)])
    }
    return result
}
