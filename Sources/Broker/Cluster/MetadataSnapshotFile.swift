import Foundation
import KafkaProtocol
import MetadataQuorum
import NIOCore

/// A metadata snapshot on disk, as KRaft names and lays it out: the file
/// `<endOffset, 20 digits>-<epoch, 10 digits>.checkpoint` in `__cluster_metadata-0`, holding
/// record batches: a control batch with a SnapshotHeaderRecord, batches of metadata records
/// (each record's value one KRaft-framed record, like the log's), a control batch with a
/// SnapshotFooterRecord. The snapshot stands for every log entry below its end offset.
/// Encoding and decoding are pure; the file helpers do plain POSIX I/O.
enum MetadataSnapshotFile {
    static let suffix = ".checkpoint"
    static let partSuffix = ".checkpoint.part"
    /// Kafka's ControlRecordType values.
    static let headerControlType: Int16 = 4
    static let footerControlType: Int16 = 5
    static let recordsPerBatch = 1000

    static func name(_ id: EpochEndOffset) -> String {
        String(format: "%020lld-%010d", id.endOffset, id.epoch) + suffix
    }

    /// The snapshot id a file name stands for, or nil for any other file.
    static func id(fromName name: String) -> EpochEndOffset? {
        guard name.hasSuffix(suffix), !name.hasSuffix(partSuffix) else { return nil }
        let parts = name.dropLast(suffix.count).split(separator: "-")
        guard parts.count == 2, let end = Int64(parts[0]), let epoch = Int32(parts[1]), end > 0, epoch >= 0 else { return nil }
        return EpochEndOffset(epoch: epoch, endOffset: end)
    }

    // MARK: encoding

    static func encode(_ records: [MetadataRecord], id: EpochEndOffset, timestamp: Int64) throws -> ByteBuffer {
        var out = ByteBuffer()
        var offset: Int64 = 0
        func control(_ type: Int16, value: ByteBuffer) throws {
            var key = ByteBuffer()
            key.writeInteger(Int16(0))
            key.writeInteger(type)
            var builder = RecordBatchBuilder(baseOffset: offset, partitionLeaderEpoch: id.epoch, isControl: true)
            try builder.append(key: key, value: value, timestamp: timestamp)
            var batch = try builder.build().buffer
            out.writeBuffer(&batch)
            offset += 1
        }
        var header = ByteBuffer()
        var headerRecord = SnapshotHeaderRecord()
        headerRecord.lastContainedLogTimestamp = timestamp
        try headerRecord.encode(into: &header, version: 0)
        try control(headerControlType, value: header)
        var index = 0
        while index < records.count {
            var builder = RecordBatchBuilder(baseOffset: offset, partitionLeaderEpoch: id.epoch, isControl: false)
            for record in records[index..<min(records.count, index + recordsPerBatch)] {
                var value = ByteBuffer()
                try MetadataRecordCodec.encode(record, into: &value)
                try builder.append(key: nil, value: value, timestamp: timestamp)
                offset += 1
            }
            index += recordsPerBatch
            var batch = try builder.build().buffer
            out.writeBuffer(&batch)
        }
        var footer = ByteBuffer()
        try SnapshotFooterRecord().encode(into: &footer, version: 0)
        try control(footerControlType, value: footer)
        return out
    }

    /// The metadata records of a whole snapshot file. Throws for a torn or corrupt file (bad
    /// CRC, no header first, no footer last).
    static func decode(_ bytes: ByteBuffer) throws -> [MetadataRecord] {
        var records: [MetadataRecord] = []
        var batches = RecordBatchIterator(bytes)
        var sawHeader = false, sawFooter = false
        while let batch = try batches.next() {
            try batch.validate()
            guard !sawFooter else { throw SnapshotError("data after the snapshot footer") }
            var iterator = try batch.records()
            if batch.isControl {
                guard let record = try iterator.next(), let key = record.key,
                      let type = key.getInteger(at: key.readerIndex + 2, as: Int16.self) else {
                    throw SnapshotError("a control batch without a control record")
                }
                if type == headerControlType {
                    guard !sawHeader, records.isEmpty else { throw SnapshotError("a second snapshot header") }
                    sawHeader = true
                } else if type == footerControlType {
                    sawFooter = true
                }
                continue
            }
            guard sawHeader else { throw SnapshotError("records before the snapshot header") }
            while let record = try iterator.next() {
                guard var value = record.value else { throw SnapshotError("a record without a value") }
                records.append(try MetadataRecordCodec.decode(&value))
            }
        }
        guard sawHeader, sawFooter else { throw SnapshotError(sawHeader ? "no snapshot footer (the file is incomplete)" : "no snapshot header") }
        return records
    }

    // MARK: files

    /// Snapshot ids present in `directory`, oldest first.
    static func list(in directory: String) -> [EpochEndOffset] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap(id(fromName:)).sorted { ($0.endOffset, $0.epoch) < ($1.endOffset, $1.epoch) }
    }

    static func path(_ id: EpochEndOffset, in directory: String) -> String { directory + "/" + name(id) }

    static func read(_ id: EpochEndOffset, in directory: String) throws -> ByteBuffer {
        let path = path(id, in: directory)
        guard let data = FileManager.default.contents(atPath: path) else { throw SnapshotError("cannot read \(path)") }
        return ByteBuffer(bytes: data)
    }

    /// Writes the snapshot durably: `.part` file, fsync, rename, fsync of the directory.
    static func write(_ bytes: ByteBuffer, id: EpochEndOffset, in directory: String) throws {
        try writeDurably(Array(bytes.readableBytesView), to: path(id, in: directory), temporary: directory + "/" + name(id) + ".part")
    }

    /// Removes leftover `.part` files (a crash during a write) and every snapshot older than the
    /// newest `keep`.
    static func clean(in directory: String, keep: Int) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(partSuffix) {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
        for old in list(in: directory).dropLast(keep) { try? fm.removeItem(atPath: path(old, in: directory)) }
    }

    static func writeDurably(_ bytes: [UInt8], to path: String, temporary tmp: String) throws {
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SnapshotError("open \(tmp): errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { close(fd); throw SnapshotError("write \(tmp): errno \(errno)") }
            written += n
        }
        let synced = fsync(fd)
        close(fd)
        guard synced == 0 else { throw SnapshotError("fsync \(tmp): errno \(errno)") }
        guard rename(tmp, path) == 0 else { throw SnapshotError("rename \(tmp) to \(path): errno \(errno)") }
        let dir = open((path as NSString).deletingLastPathComponent, O_RDONLY)
        if dir >= 0 { _ = fsync(dir); close(dir) }
    }
}

struct SnapshotError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = "metadata snapshot: " + description }
}
