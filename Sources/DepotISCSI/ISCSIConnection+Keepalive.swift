import NIOCore

extension ISCSIConnection {
    /// Dead-peer detection: when nothing has arrived for `keepalive.interval`,
    /// send a NOP-In ping (RFC 7143 §11.19: TTT set, ITT 0xffffffff, StatSN not
    /// advanced), which the initiator must answer with a NOP-Out echoing the
    /// TTT (§11.18). Any PDU counts as a sign of life; if none arrives within
    /// `keepalive.timeout` of the ping, the connection is closed, its tasks
    /// aborted and its reservations released.
    func keepPeerAlive() async {
        guard let interval = keepalive.interval else { return }
        let tick = min(interval, keepalive.timeout) / 4
        var pingTag: UInt32 = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            if Task.isCancelled { return }
            let now = ContinuousClock.now
            let (quiet, outstanding) = confined { (now - lastHeard, pingSent) }
            if let outstanding, now - outstanding >= keepalive.timeout {
                logger.warning(
                    "initiator did not answer a NOP-In ping: closing the connection", metadata: ["quiet": "\(quiet)"])
                try? await channel.close()
                return
            }
            guard outstanding == nil, quiet >= interval else { continue }
            pingTag = pingTag &+ 1 == 0xFFFF_FFFF ? 1 : pingTag &+ 1
            var ping = NOPIn()
            ping.transferTag = pingTag
            confined {
                pingSent = now
                post([(ping.frame, .peek)])
            }
        }
    }

    /// Async Message, AsyncEvent 1 (RFC 7143 §11.9.1): the target asks the
    /// initiator to log out within `seconds` (Parameter3). On the event loop:
    /// shutdown calls it through `eventLoop.execute`, so it is stamped and
    /// written in order with every other answer.
    func requestLogout(within seconds: Int) {
        guard machine.isFullFeature else { return }
        var message = AsyncMessage()
        message.event = 1
        message.parameter3 = UInt16(clamping: seconds)
        post([(message.frame, .status)])
    }
}
