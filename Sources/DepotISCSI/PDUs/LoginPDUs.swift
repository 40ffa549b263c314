/// Login Request (RFC 7143 §11.12); always immediate.
public struct LoginRequest: Sendable, Equatable {
    /// T: the initiator is ready to move to `nextStage`.
    public var transit = false
    /// C: the text continues in the next request (not supported by Depot).
    public var continues = false
    /// CSG and NSG: 0 security, 1 operational, 3 full feature (§11.12.3).
    public var currentStage: UInt8 = 0
    public var nextStage: UInt8 = 0
    public var versionMax: UInt8 = 0
    public var versionMin: UInt8 = 0
    public var isid: [UInt8] = [UInt8](repeating: 0, count: 6)
    public var tsih: UInt16 = 0
    public var tag: UInt32 = 0
    public var cid: UInt16 = 0
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0
    /// Text keys (key=value, NUL-separated).
    public var data: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        transit = frame.flags & 0x80 != 0
        continues = frame.flags & 0x40 != 0
        currentStage = (frame.flags >> 2) & 0x3
        nextStage = frame.flags & 0x3
        versionMax = frame.bhs[2]
        versionMin = frame.bhs[3]
        isid = Array(frame.bhs[8..<14])
        tsih = frame.u16(14)
        tag = frame.initiatorTaskTag
        cid = frame.u16(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(
            .loginRequest, immediate: true,
            flags: (transit ? 0x80 : 0) | (continues ? 0x40 : 0) | (currentStage & 3) << 2 | nextStage & 3)
        f.bhs[2] = versionMax
        f.bhs[3] = versionMin
        f.bhs.replaceSubrange(8..<14, with: (isid + [UInt8](repeating: 0, count: 6)).prefix(6))
        f.put16(tsih, 14)
        f.initiatorTaskTag = tag
        f.put16(cid, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        f.data = data
        return f
    }
}

/// Login Response (RFC 7143 §11.13).
public struct LoginResponse: Sendable, Equatable {
    public var transit = false
    public var currentStage: UInt8 = 0
    public var nextStage: UInt8 = 0
    public var versionMax: UInt8 = 0
    public var versionActive: UInt8 = 0
    public var isid: [UInt8] = [UInt8](repeating: 0, count: 6)
    public var tsih: UInt16 = 0
    public var tag: UInt32 = 0
    /// Status-Class and Status-Detail (§11.13.5): 0 success, 1 redirection,
    /// 2 initiator error, 3 target error.
    public var statusClass: UInt8 = 0
    public var statusDetail: UInt8 = 0
    public var data: [UInt8] = []

    public init() {}

    /// The answer to `request`: its ISID, TSIH and tag, stages as given.
    public init(answering request: LoginRequest, transit: Bool, nextStage: UInt8) {
        self.transit = transit
        currentStage = request.currentStage
        self.nextStage = transit ? nextStage : 0
        isid = request.isid
        tsih = request.tsih
        tag = request.tag
    }

    public init(_ frame: ISCSIFrame) {
        transit = frame.flags & 0x80 != 0
        currentStage = (frame.flags >> 2) & 0x3
        nextStage = frame.flags & 0x3
        versionMax = frame.bhs[2]
        versionActive = frame.bhs[3]
        isid = Array(frame.bhs[8..<14])
        tsih = frame.u16(14)
        tag = frame.initiatorTaskTag
        statusClass = frame.bhs[36]
        statusDetail = frame.bhs[37]
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.loginResponse, flags: (transit ? 0x80 : 0) | (currentStage & 3) << 2 | nextStage & 3)
        f.bhs[2] = versionMax
        f.bhs[3] = versionActive
        f.bhs.replaceSubrange(8..<14, with: (isid + [UInt8](repeating: 0, count: 6)).prefix(6))
        f.put16(tsih, 14)
        f.initiatorTaskTag = tag
        f.bhs[36] = statusClass
        f.bhs[37] = statusDetail
        f.data = data
        return f
    }
}

/// Text Request (RFC 7143 §11.10): SendTargets and other text keys.
public struct TextRequest: Sendable, Equatable {
    public var immediate = false
    public var final = true
    public var continues = false
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0
    public var data: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        immediate = frame.immediate
        final = frame.final
        continues = frame.flags & 0x40 != 0
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.textRequest, immediate: immediate, flags: (final ? 0x80 : 0) | (continues ? 0x40 : 0))
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        f.data = data
        return f
    }
}

/// Text Response (RFC 7143 §11.11).
public struct TextResponse: Sendable, Equatable {
    public var final = true
    public var continues = false
    public var tag: UInt32 = 0
    /// FFFFFFFFh when the response is complete (§11.11.4).
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var data: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        final = frame.final
        continues = frame.flags & 0x40 != 0
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.textResponse, flags: (final ? 0x80 : 0) | (continues ? 0x40 : 0))
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.data = data
        return f
    }
}

/// Logout Request (RFC 7143 §11.14).
public struct LogoutRequest: Sendable, Equatable {
    public var immediate = false
    /// 0 close the session, 1 close the connection, 2 remove it for recovery (§11.14.1).
    public var reason: UInt8 = 0
    public var tag: UInt32 = 0
    public var cid: UInt16 = 0
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        immediate = frame.immediate
        reason = frame.flags & 0x7F
        tag = frame.initiatorTaskTag
        cid = frame.u16(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.logoutRequest, immediate: immediate, flags: 0x80 | reason & 0x7F)
        f.initiatorTaskTag = tag
        f.put16(cid, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        return f
    }
}

/// Logout Response (RFC 7143 §11.15).
public struct LogoutResponse: Sendable, Equatable {
    /// 0 closed successfully (§11.15.1).
    public var response: UInt8 = 0
    public var tag: UInt32 = 0
    public var time2Wait: UInt16 = 0
    public var time2Retain: UInt16 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        response = frame.bhs[2]
        tag = frame.initiatorTaskTag
        time2Wait = frame.u16(40)
        time2Retain = frame.u16(42)
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.logoutResponse)
        f.bhs[2] = response
        f.initiatorTaskTag = tag
        f.put16(time2Wait, 40)
        f.put16(time2Retain, 42)
        return f
    }
}
