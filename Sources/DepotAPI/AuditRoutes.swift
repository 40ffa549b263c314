import DepotCore
import Foundation
import Hummingbird

extension AuditList: ResponseEncodable {}

/// `GET /v1/audit` (admin): the audit log, filtered.
/// `?since=SECONDS` (entries of the last that many seconds), `?action=TEXT`
/// (actions containing it), `?outcome=ok|failure`, `?limit=N` (the last N,
/// 1–100000, default 1000).
struct AuditRoutes {
    let log: AuditLog

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("audit") { request, _ -> AuditList in
            let query = request.uri.queryParameters
            var since: Date?
            if let text = query.get("since") {
                guard let seconds = Int(String(text)), seconds > 0 else {
                    throw DepotError.invalidArgument("since must be a positive number of seconds, not '\(text)'")
                }
                since = Date().addingTimeInterval(-TimeInterval(seconds))
            }
            var failures: Bool?
            if let text = query.get("outcome") {
                switch text {
                case "ok": failures = false
                case "failure": failures = true
                default: throw DepotError.invalidArgument("outcome must be ok or failure, not '\(text)'")
                }
            }
            var limit = 1000
            if let text = query.get("limit") {
                guard let n = Int(String(text)), (1...100_000).contains(n) else {
                    throw DepotError.invalidArgument("limit must be 1 to 100000, not '\(text)'")
                }
                limit = n
            }
            let action = query.get("action").map { String($0) }
            return AuditList(entries: await log.read(since: since, action: action, failures: failures, limit: limit))
        }
    }
}
