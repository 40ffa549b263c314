import Foundation

/// Creation times in the catalog and the API: ISO 8601 with milliseconds.
public enum Timestamp {
    public static func now() -> String { string(Date()) }

    public static func string(_ date: Date) -> String { formatter().string(from: date) }

    /// The instant a timestamp names (nil: not one of these).
    public static func date(_ text: String) -> Date? { formatter().date(from: text) }

    private static func formatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
