import NIOCore

/// A tagged field this codec does not know (newer than the specs it was generated from).
/// Decoders keep them, in tag order, and encoders write them back unchanged.
public struct TaggedField: Hashable, Sendable {
    public var tag: UInt32
    public var data: ByteBuffer

    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}
