/// NOP-Out (RFC 7143 §11.18): a ping (real ITT) or the answer to a NOP-In (ITT FFFFFFFFh).
public struct NOPOut: Sendable, Equatable {
    public var immediate = false
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0xFFFF_FFFF
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0
    public var data: [UInt8] = []

    /// A ping the target must answer (§11.18.1), not an answer to the target's.
    public var isPing: Bool { tag != 0xFFFF_FFFF }

    public init() {}

    public init(_ frame: ISCSIFrame) {
        immediate = frame.immediate
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.nopOut, immediate: immediate)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        f.data = data
        return f
    }
}

/// NOP-In (RFC 7143 §11.19): the answer to a ping, or the target's own ping
/// (ITT FFFFFFFFh, a Target Transfer Tag the initiator echoes).
public struct NOPIn: Sendable, Equatable {
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0xFFFF_FFFF
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var data: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.nopIn)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.data = data
        return f
    }
}

/// Task Management Function Request (RFC 7143 §11.5).
public struct TaskManagementRequest: Sendable, Equatable {
    public var immediate = false
    /// Function (§11.5.1): 1 ABORT TASK … 8 TASK REASSIGN.
    public var function: UInt8 = 0
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0
    /// The task ABORT TASK names.
    public var referencedTag: UInt32 = 0xFFFF_FFFF
    public var cmdSN: UInt32 = 0
    public var expStatSN: UInt32 = 0
    public var refCmdSN: UInt32 = 0
    public var expDataSN: UInt32 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        immediate = frame.immediate
        function = frame.flags & 0x7F
        lun = frame.lun
        tag = frame.initiatorTaskTag
        referencedTag = frame.u32(20)
        cmdSN = frame.u32(24)
        expStatSN = frame.u32(28)
        refCmdSN = frame.u32(32)
        expDataSN = frame.u32(36)
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.taskManagementRequest, immediate: immediate, flags: 0x80 | function & 0x7F)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(referencedTag, 20)
        f.put32(cmdSN, 24)
        f.put32(expStatSN, 28)
        f.put32(refCmdSN, 32)
        f.put32(expDataSN, 36)
        return f
    }
}

/// Task Management Function Response (RFC 7143 §11.6).
public struct TaskManagementResponse: Sendable, Equatable {
    /// Response (§11.6.1): 0 function complete … 5 not supported, FFh rejected.
    public var response: UInt8 = 0
    public var tag: UInt32 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        response = frame.bhs[2]
        tag = frame.initiatorTaskTag
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.taskManagementResponse)
        f.bhs[2] = response
        f.initiatorTaskTag = tag
        return f
    }
}

/// Asynchronous Message (RFC 7143 §11.9).
public struct AsyncMessage: Sendable, Equatable {
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    /// AsyncEvent (§11.9.1): 1 the target requests a logout.
    public var event: UInt8 = 0
    public var vendorCode: UInt8 = 0
    public var parameter1: UInt16 = 0
    public var parameter2: UInt16 = 0
    /// For event 1: seconds the initiator has to log out.
    public var parameter3: UInt16 = 0
    public var data: [UInt8] = []

    public init() {}

    public init(_ frame: ISCSIFrame) {
        lun = frame.lun
        event = frame.bhs[36]
        vendorCode = frame.bhs[37]
        parameter1 = frame.u16(38)
        parameter2 = frame.u16(40)
        parameter3 = frame.u16(42)
        data = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.asyncMessage)
        f.lun = lun
        f.initiatorTaskTag = 0xFFFF_FFFF
        f.put32(0xFFFF_FFFF, 20)
        f.bhs[36] = event
        f.bhs[37] = vendorCode
        f.put16(parameter1, 38)
        f.put16(parameter2, 40)
        f.put16(parameter3, 42)
        f.data = data
        return f
    }
}

/// Reject (RFC 7143 §11.17): the offending PDU's header back, with a reason.
public struct Reject: Sendable, Equatable {
    /// Reason (§11.17.1): 04h protocol error, 05h command not supported, 09h invalid PDU field …
    public var reason: UInt8 = 0
    /// The rejected PDU's BHS.
    public var header: [UInt8] = []

    public init() {}

    public init(reason: UInt8, rejecting frame: ISCSIFrame) {
        self.reason = reason
        header = frame.bhs
    }

    public init(_ frame: ISCSIFrame) {
        reason = frame.bhs[2]
        header = frame.data
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.reject)
        f.bhs[2] = reason
        f.initiatorTaskTag = 0xFFFF_FFFF
        f.data = header
        return f
    }
}

/// SNACK Request (RFC 7143 §11.16); Depot runs at ErrorRecoveryLevel 0 and rejects it.
public struct SNACKRequest: Sendable, Equatable {
    /// Type (§11.16.1): 0 Data/R2T, 1 status, 2 DataACK, 3 R-Data.
    public var type: UInt8 = 0
    public var lun: [UInt8] = [UInt8](repeating: 0, count: 8)
    public var tag: UInt32 = 0xFFFF_FFFF
    public var transferTag: UInt32 = 0xFFFF_FFFF
    public var expStatSN: UInt32 = 0
    public var begRun: UInt32 = 0
    public var runLength: UInt32 = 0

    public init() {}

    public init(_ frame: ISCSIFrame) {
        type = frame.flags & 0x0F
        lun = frame.lun
        tag = frame.initiatorTaskTag
        transferTag = frame.u32(20)
        expStatSN = frame.u32(28)
        begRun = frame.u32(40)
        runLength = frame.u32(44)
    }

    public var frame: ISCSIFrame {
        var f = ISCSIFrame(.snackRequest, flags: 0x80 | type & 0x0F)
        f.lun = lun
        f.initiatorTaskTag = tag
        f.put32(transferTag, 20)
        f.put32(expStatSN, 28)
        f.put32(begRun, 40)
        f.put32(runLength, 44)
        return f
    }
}
