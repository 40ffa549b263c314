import NIOCore

/// The first handler of a connection: frames the byte stream into PDUs
/// (RFC 7143 §11.2, `ISCSIFrameDecoder`) and routes them. During login the
/// PDUs go on to the async channel the login loop reads. Once the connection
/// is in full feature phase it is attached, and every PDU goes to it on the
/// event loop, in arrival order: a plain READ or WRITE straight from the
/// received bytes (`ISCSIConnection.fastLane`), anything else decoded first.
final class ISCSIFrameHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ISCSIPDU

    private var decoder: ISCSIFrameDecoder
    /// Received bytes not yet framed (nil when there are none).
    private var pending: ByteBuffer?
    /// A framing error ends the connection; nothing after it is read.
    private var failed = false
    /// Set and cleared on the event loop (the connection's tasks run there).
    private var connection: ISCSIConnection?

    init(decoder: ISCSIFrameDecoder) {
        self.decoder = decoder
    }

    func attach(_ connection: ISCSIConnection) { self.connection = connection }
    func detach() { connection = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeBuffer(&bytes)
        }
        while !failed, pending != nil {
            if let connection, connection.fastLane(&pending!) { continue }
            let pdu: ISCSIPDU?
            do {
                pdu = try decoder.decode(buffer: &pending!)
            } catch {
                // A PDU that cannot be framed (oversized segment, digest error) ends the connection.
                failed = true
                pending = nil
                context.fireErrorCaught(error)
                return
            }
            guard let pdu else { break }
            if let connection {
                connection.received(pdu)
            } else {
                context.fireChannelRead(wrapInboundOut(pdu))
            }
        }
        if pending?.readableBytes == 0 {
            pending = nil
        } else if let index = pending?.readerIndex, index > 1 << 20 {
            pending!.discardReadBytes()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Answers the fast lane wrote while this batch of bytes was read leave together.
        connection?.flushFastLane()
        context.fireChannelReadComplete()
    }
}
