import NIOCore

/// The first handler of a connection: frames the byte stream into PDUs
/// (RFC 7143 §11.2, `ISCSIFrameDecoder`) and hands each to the connection on
/// the event loop, in arrival order: a plain READ or WRITE straight from the
/// received bytes (`ISCSIConnection.fastLane`), anything else decoded first.
///
/// Nothing is decoded before the connection is attached, nor while a login
/// step is being negotiated (`ConnectionStateMachine.isNegotiating`): whether
/// the next PDU has digests, belongs to the full feature phase and has a
/// nexus depends on that step's answer. The bytes wait here and `resume()`
/// goes on once the answer is settled. A peer has no reason to send while it
/// waits for a Login Response; more than `maxWaitingBytes` ends the connection.
final class ISCSIFrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ISCSIFrame

    private var decoder: ISCSIFrameDecoder
    /// Received bytes not yet framed (nil when there are none).
    private var pending: ByteBuffer?
    /// A framing error ends the connection; nothing after it is read.
    private var failed = false
    /// Set and cleared on the event loop (the connection's tasks run there).
    private var connection: ISCSIConnection?
    private var context: ChannelHandlerContext?

    /// Bytes a peer may send while no PDU may be decoded.
    static let maxWaitingBytes = 1 << 20

    struct SentWhileWaiting: Error, CustomStringConvertible {
        var description: String {
            "more than \(ISCSIFrameHandler.maxWaitingBytes) bytes sent while a Login Response was pending"
        }
    }

    init(decoder: ISCSIFrameDecoder) {
        self.decoder = decoder
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// From now on PDUs go to `connection`, starting with any bytes already here.
    func attach(_ connection: ISCSIConnection) {
        self.connection = connection
        resume()
    }

    func detach() { connection = nil }

    /// Decodes what waited while a login step was negotiated.
    func resume() {
        guard let context else { return }
        process(context)
        connection?.flushFastLane()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var bytes = unwrapInboundIn(data)
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeBuffer(&bytes)
        }
        process(context)
    }

    private func process(_ context: ChannelHandlerContext) {
        while !failed, pending != nil {
            guard let connection, !connection.machine.isNegotiating else {
                if let waiting = pending?.readableBytes, waiting > Self.maxWaitingBytes {
                    fail(context, SentWhileWaiting())
                }
                return
            }
            if connection.machine.isClosed {
                pending = nil
                return
            }
            if connection.fastLane(&pending!) { continue }
            let pdu: ISCSIFrame?
            do {
                pdu = try decoder.decode(buffer: &pending!)
            } catch {
                // A PDU that cannot be framed (oversized segment, digest error) ends the connection.
                fail(context, error)
                return
            }
            guard let pdu else { break }
            connection.received(pdu)
        }
        if pending?.readableBytes == 0 {
            pending = nil
        } else if let index = pending?.readerIndex, index > 1 << 20 {
            pending!.discardReadBytes()
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        failed = true
        pending = nil
        context.fireErrorCaught(error)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Answers the fast lane wrote while this batch of bytes was read leave together.
        connection?.flushFastLane()
        context.fireChannelReadComplete()
    }
}
