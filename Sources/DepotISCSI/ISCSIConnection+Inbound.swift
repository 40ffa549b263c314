import NIOCore

/// The connection is its channel's inbound handler: it frames the byte
/// stream into PDUs (RFC 7143 §11.2, `ISCSIFrameDecoder`) and takes each on
/// the event loop, in arrival order — a plain READ or WRITE straight from the
/// received bytes (`fastLane`), anything else decoded first and given to
/// `received(_:)`. So the state machine it owns lives where the bytes arrive,
/// and no other object holds a reference into it.
///
/// Nothing is decoded before `run` starts serving, nor while a login step is
/// being negotiated (`ConnectionStateMachine.isNegotiating`): whether the
/// next PDU has digests, belongs to the full feature phase and has a nexus
/// depends on that step's answer. The bytes wait here and `resume()` goes on
/// once the answer is settled. A peer has no reason to send while it waits
/// for a Login Response; more than `maxWaitingBytes` ends the connection.
extension ISCSIConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ISCSIFrame

    /// Bytes a peer may send while no PDU may be decoded.
    static let maxWaitingBytes = 1 << 20

    struct SentWhileWaiting: Error, CustomStringConvertible {
        var description: String {
            "more than \(ISCSIConnection.maxWaitingBytes) bytes sent while a Login Response was pending"
        }
    }

    func handlerAdded(context: ChannelHandlerContext) { inboundContext = context }
    func handlerRemoved(context: ChannelHandlerContext) { inboundContext = nil }

    /// Decodes what waited (before serving began, or while a login step was negotiated).
    func resume() {
        guard let context = inboundContext else { return }
        process(context)
        flushFastLane()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !framingFailed else { return }
        var bytes = unwrapInboundIn(data)
        if pending == nil {
            pending = bytes
        } else if segmentsSliced {
            // The held bytes (a frame not yet whole) share their storage with
            // segments still in use, so appending to them would copy them, and
            // again at every read until the frame is whole. They are copied
            // once, into a buffer with room for the whole frame.
            let held = pending!.readableBytes
            let frame = decoder.frameLength(startingIn: pending!) ?? 0
            var whole = context.channel.allocator.buffer(capacity: max(held + bytes.readableBytes, frame))
            whole.writeBuffer(&pending!)
            whole.writeBuffer(&bytes)
            pending = whole
            segmentsSliced = false
        } else {
            pending!.writeBuffer(&bytes)
        }
        process(context)
    }

    private func process(_ context: ChannelHandlerContext) {
        while !framingFailed, pending != nil {
            guard serving, !machine.isNegotiating else {
                if let waiting = pending?.readableBytes, waiting > Self.maxWaitingBytes {
                    fail(context, SentWhileWaiting())
                }
                return
            }
            if machine.isClosed {
                pending = nil
                return
            }
            if fastLane(&pending!) { continue }
            let pdu: ISCSIFrame?
            do {
                pdu = try decoder.decode(buffer: &pending!)
            } catch {
                // A PDU that cannot be framed (oversized segment, digest error) ends the connection.
                fail(context, error)
                return
            }
            guard let pdu else { break }
            if pdu.dataSegmentLength > 0 { segmentsSliced = true }
            received(pdu)
        }
        if pending?.readableBytes == 0 {
            pending = nil
            segmentsSliced = false
        } else if let index = pending?.readerIndex, index > 1 << 20 {
            pending!.discardReadBytes()
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        framingFailed = true
        pending = nil
        context.fireErrorCaught(error)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Answers the fast lane wrote while this batch of bytes was read leave together.
        flushFastLane()
        context.fireChannelReadComplete()
    }
}
