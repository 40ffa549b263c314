import NIOCore

/// Sits between the frame decoder and the async channel. During login it
/// passes PDUs on to the connection's login loop; once the connection is in
/// full feature phase it hands each PDU to the connection directly on the
/// event loop, without the trip through an async sequence and a task resume
/// per PDU.
final class FullFeatureDispatch: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ISCSIPDU
    typealias InboundOut = ISCSIPDU

    /// Set and cleared on the event loop (the connection's tasks run there).
    private var connection: ISCSIConnection?

    func attach(_ connection: ISCSIConnection) { self.connection = connection }
    func detach() { connection = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let connection {
            connection.received(unwrapInboundIn(data))
        } else {
            context.fireChannelRead(data)
        }
    }
}
