import DepotCore

extension DepotError {
    /// Runs a catalog call: a `DepotError` passes through, anything else
    /// (SQLite, decoding) becomes an internal error naming the catalog.
    public static func fromCatalog<T>(_ body: () throws -> T) throws(DepotError) -> T {
        do { return try body() } catch let error as DepotError { throw error } catch {
            throw .internalError("catalog error: \(error)")
        }
    }
}
