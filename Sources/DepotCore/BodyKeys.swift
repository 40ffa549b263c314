import Foundation

/// The keys of a request body its decoded value does not hold: the check
/// behind the API's StrictJSONDecoder, here so the fuzz target runs it too.
/// `sent` is the body as JSONSerialization parsed it, `read` the decoded
/// value encoded again and parsed the same way.
public enum BodyKeys {
    /// What of `sent` the decoded value does not hold, said for the client
    /// (`'rules[0].anonuid' is null…`), or nil when it holds all of it.
    public static func unread(_ sent: Any, read: Any, at path: String = "") -> String? {
        switch (sent, read) {
        case (let sent as [String: Any], let read as [String: Any]):
            for key in sent.keys.sorted() {
                let inner = path.isEmpty ? key : "\(path).\(key)"
                guard let kept = read[key] else {
                    // The key is the client's: at most 100 characters of it go into the answer and the audit log.
                    let said = inner.count > 100 ? inner.prefix(100) + "…" : Substring(inner)
                    return sent[key] is NSNull
                        ? "'\(said)' is null: leave the field out or give it a value"
                        : "'\(said)' is not a field of this request"
                }
                if let problem = unread(sent[key] as Any, read: kept, at: inner) { return problem }
            }
            return nil
        case (let sent as [Any], let read as [Any]) where sent.count == read.count:
            for (index, pair) in zip(sent, read).enumerated() {
                if let problem = unread(pair.0, read: pair.1, at: "\(path)[\(index)]") { return problem }
            }
            return nil
        default:
            return nil
        }
    }
}
