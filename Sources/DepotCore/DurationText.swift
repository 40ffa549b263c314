/// Durations as an operator types them: a whole number and a unit, `90s`,
/// `45m`, `12h`, `30d`, `2w` (a number alone is seconds).
public enum DurationText {
    /// Seconds, or `invalidArgument` naming the accepted form.
    public static func seconds(_ text: String) throws(DepotError) -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        var digits = Substring(text)
        var unit = 1
        if let last = text.last, let factor = units[last] {
            unit = factor
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let count = Int(digits)
        else {
            throw .invalidArgument("invalid duration '\(text)': use a whole number and s, m, h, d or w (e.g. 30d)")
        }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw .invalidArgument("duration '\(text)' is too long") }
        return seconds
    }
}
