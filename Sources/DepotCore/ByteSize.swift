/// Sizes as operators type them: `512`, `10G`, `10GiB`, `1.5T`.
///
/// Every unit is binary (K = 1024), as in `qemu-img` and LVM; a bare number
/// is bytes. Fractions are allowed and rounded down to a whole byte.
public enum ByteSize {
    private static let units: [(suffixes: [String], shift: UInt64)] = [
        (["", "b"], 0),
        (["k", "kb", "kib"], 10),
        (["m", "mb", "mib"], 20),
        (["g", "gb", "gib"], 30),
        (["t", "tb", "tib"], 40),
        (["p", "pb", "pib"], 50),
    ]

    /// Parses a size; throws `invalidArgument` for empty, zero, negative,
    /// non-numeric, overflowing or unknown-unit input.
    public static func parse(_ text: String) throws(DepotError) -> UInt64 {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { throw .invalidArgument("size is empty") }
        var numberPart = ""
        var unitPart = ""
        for ch in trimmed {
            if unitPart.isEmpty, ch.isASCII, ch.isNumber || ch == "." || ch == "-" || ch == "+" {
                numberPart.append(ch)
            } else {
                unitPart.append(ch)
            }
        }
        let unit = unitPart.lowercased()
        guard let shift = units.first(where: { $0.suffixes.contains(unit) })?.shift else {
            throw .invalidArgument(
                "unknown size unit '\(unitPart)' in '\(text)' (use B, K, M, G, T, P, optionally with iB)")
        }
        if numberPart.hasPrefix("-") { throw .invalidArgument("size must be positive, got '\(text)'") }
        // A sign is not silently dropped: '+1G' given where a size is wanted is
        // a relative size in the wrong place (only `volume resize` takes +N / -N).
        if numberPart.hasPrefix("+") {
            throw .invalidArgument("a size has no sign, got '\(text)' (only volume resize takes +N or -N)")
        }
        let digits = numberPart
        let pieces = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard !digits.isEmpty, pieces.count <= 2, pieces.allSatisfy({ $0.allSatisfy(\.isNumber) }),
            !(pieces.first?.isEmpty ?? true) || (pieces.count == 2 && !pieces[1].isEmpty)
        else { throw .invalidArgument("not a size: '\(text)'") }
        let multiplier: UInt64 = 1 << shift
        guard let whole = UInt64(pieces[0].isEmpty ? "0" : pieces[0]) else {
            throw .invalidArgument("size too large: '\(text)'")
        }
        let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw .invalidArgument("size too large: '\(text)'") }
        var total = wholeBytes
        if pieces.count == 2, !pieces[1].isEmpty {
            // Exact fixed-point for up to 18 fractional digits.
            let frac = String(pieces[1].prefix(18))
            guard let numerator = UInt64(frac) else { throw .invalidArgument("not a size: '\(text)'") }
            var denominator: UInt64 = 1
            for _ in 0..<frac.count { denominator *= 10 }
            let fracBytes = Double(numerator) / Double(denominator) * Double(multiplier)
            let (sum, overflow2) = total.addingReportingOverflow(UInt64(fracBytes))
            guard !overflow2 else { throw .invalidArgument("size too large: '\(text)'") }
            total = sum
        }
        guard total > 0 else { throw .invalidArgument("size must be greater than zero, got '\(text)'") }
        guard total <= UInt64(Int64.max) else { throw .invalidArgument("size too large: '\(text)'") }
        return total
    }

    /// A new size as `volume resize` takes it: absolute, or `+N` / `-N`
    /// relative to the current size (as `lvresize` and `qemu-img resize`).
    public enum Change: Sendable, Equatable {
        case absolute(UInt64)
        case grow(UInt64)
        case shrink(UInt64)

        /// The size this change makes of `current`; throws when it would not
        /// be a positive 63-bit size.
        public func applied(to current: UInt64) throws(DepotError) -> UInt64 {
            switch self {
            case .absolute(let size): return size
            case .grow(let by):
                let (size, overflow) = current.addingReportingOverflow(by)
                guard !overflow, size <= UInt64(Int64.max) else {
                    throw .invalidArgument("growing \(ByteSize.format(current)) by \(ByteSize.format(by)) is too large")
                }
                return size
            case .shrink(let by):
                guard by < current else {
                    throw .invalidArgument(
                        "cannot shrink \(ByteSize.format(current)) by \(ByteSize.format(by)): nothing would be left")
                }
                return current - by
            }
        }
    }

    /// Parses `N`, `+N` or `-N` (N as `parse` takes it).
    public static func parseChange(_ text: String) throws(DepotError) -> Change {
        let trimmed = text.trimmingSpaces()
        if trimmed.hasPrefix("+") { return .grow(try parse(String(trimmed.dropFirst()))) }
        if trimmed.hasPrefix("-") { return .shrink(try parse(String(trimmed.dropFirst()))) }
        return .absolute(try parse(trimmed))
    }

    /// Human form with binary units: `512 B`, `1.5 GiB`, `10 TiB`.
    public static func format(_ bytes: UInt64) -> String {
        let names = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var index = 0
        while value >= 1024, index < names.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        let rounded = (value * 10).rounded() / 10
        if rounded == rounded.rounded() { return "\(Int(rounded)) \(names[index])" }
        return "\(Int(rounded)).\(Int((rounded * 10).rounded()) % 10) \(names[index])"
    }

    /// A byte count for a message: human units, then the exact count
    /// (`4 GiB (4294967296 bytes)`; `512 bytes` alone below a KiB).
    public static func describe(_ bytes: UInt64) -> String {
        bytes < 1024 ? "\(bytes) bytes" : "\(format(bytes)) (\(bytes) bytes)"
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
