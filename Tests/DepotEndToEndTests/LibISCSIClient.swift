import CLibISCSI
import Foundation

/// A libiscsi initiator driven from Swift (the C library through CLibISCSI),
/// owning its context pointer.
final class LibISCSIClient {
    private let context: OpaquePointer
    private(set) var lastError = ""

    /// `isid`: a fixed initiator port (ISID qualifier) for the session, as a
    /// real initiator keeps across reconnects; else libiscsi picks one.
    init(initiator: String, isid: UInt32? = nil) throws {
        guard let ctx = iscsi_create_context(initiator) else { throw HarnessError("iscsi_create_context failed") }
        context = ctx
        if let isid { iscsi_set_isid_random(ctx, 0x1234, isid) }
        // Fail instead of reconnecting behind the test's back.
        iscsi_set_noautoreconnect(ctx, 1)
        iscsi_set_timeout(ctx, 10)
    }

    deinit { iscsi_destroy_context(context) }

    struct Credentials {
        var user: String
        var secret: String
        var mutualUser: String?
        var mutualSecret: String?
    }

    /// Logs into `target` at `portal` and reports whether the login succeeded.
    func login(portal: String, target: String, chap: Credentials? = nil, headerDigest: Bool = false) -> Bool {
        iscsi_set_targetname(context, target)
        iscsi_set_session_type(context, ISCSI_SESSION_NORMAL)
        iscsi_set_header_digest(context, headerDigest ? ISCSI_HEADER_DIGEST_CRC32C : ISCSI_HEADER_DIGEST_NONE)
        if let chap {
            iscsi_set_initiator_username_pwd(context, chap.user, chap.secret)
            if let user = chap.mutualUser, let secret = chap.mutualSecret {
                iscsi_set_target_username_pwd(context, user, secret)
            }
        }
        let ok = iscsi_full_connect_sync(context, portal, 0) == 0
        lastError = iscsi_get_error(context).map { String(cString: $0) } ?? ""
        return ok
    }

    func write(lba: UInt32, _ bytes: [UInt8], blockSize: Int32 = 512) -> Bool {
        var data = bytes
        guard
            let task = data.withUnsafeMutableBufferPointer({
                iscsi_write10_sync(context, 0, lba, $0.baseAddress, UInt32($0.count), blockSize, 0, 0, 0, 0, 0)
            })
        else {
            lastError = iscsi_get_error(context).map { String(cString: $0) } ?? ""
            return false
        }
        defer { scsi_free_scsi_task(task) }
        return task.pointee.status == Int32(SCSI_STATUS_GOOD.rawValue)
    }

    func read(lba: UInt32, length: Int, blockSize: Int32 = 512) -> [UInt8]? {
        guard let task = iscsi_read10_sync(context, 0, lba, UInt32(length), blockSize, 0, 0, 0, 0, 0) else {
            return nil
        }
        defer { scsi_free_scsi_task(task) }
        guard task.pointee.status == Int32(SCSI_STATUS_GOOD.rawValue), let base = task.pointee.datain.data else {
            return nil
        }
        return Array(UnsafeBufferPointer(start: base, count: Int(task.pointee.datain.size)))
    }

    /// READ(10) of one block: SCSI status, sense key and ASC<<8|ASCQ.
    func probe() -> (status: Int32, key: Int32, ascq: Int32)? {
        guard let task = iscsi_read10_sync(context, 0, 0, 512, 512, 0, 0, 0, 0, 0) else { return nil }
        defer { scsi_free_scsi_task(task) }
        return (task.pointee.status, Int32(task.pointee.sense.key.rawValue), Int32(task.pointee.sense.ascq))
    }

    func lunReset() -> Bool { iscsi_task_mgmt_lun_reset_sync(context, 0) == 0 }

    /// The outcome of one command: status, sense key, ASC<<8|ASCQ, data-in.
    struct Outcome {
        var status: Int32
        var key: Int32
        var ascq: Int32
        var data: [UInt8]
        var good: Bool { status == 0 }
        var senseText: String { "status \(status) sense \(String(key, radix: 16))/\(String(ascq, radix: 16))" }
    }

    /// Any CDB to `lun`, with data-out or `dataIn` bytes of data-in.
    func command(lun: Int32 = 0, _ cdb: [UInt8], dataOut: [UInt8] = [], dataIn: Int = 0) -> Outcome? {
        var bytes = cdb
        let direction: Int32 = !dataOut.isEmpty ? 2 : dataIn > 0 ? 1 : 0  // SCSI_XFER_WRITE / READ / NONE
        guard
            let task = bytes.withUnsafeMutableBufferPointer({
                scsi_create_task(
                    Int32(cdb.count), $0.baseAddress, direction, Int32(dataOut.isEmpty ? dataIn : dataOut.count))
            })
        else { return nil }
        var out = dataOut
        let done = out.withUnsafeMutableBufferPointer { buffer -> UnsafeMutablePointer<scsi_task>? in
            if dataOut.isEmpty { return iscsi_scsi_command_sync(context, lun, task, nil) }
            var data = iscsi_data(size: buffer.count, data: buffer.baseAddress)
            return iscsi_scsi_command_sync(context, lun, task, &data)
        }
        guard let done else {
            lastError = iscsi_get_error(context).map { String(cString: $0) } ?? ""
            return nil
        }
        defer { scsi_free_scsi_task(done) }
        let t = done.pointee
        let data = t.datain.data.map { Array(UnsafeBufferPointer(start: $0, count: Int(t.datain.size))) } ?? []
        return Outcome(status: t.status, key: Int32(t.sense.key.rawValue), ascq: Int32(t.sense.ascq), data: data)
    }

    func logout() { iscsi_logout_sync(context) }
}
