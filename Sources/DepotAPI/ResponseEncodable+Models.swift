import DepotCore
import Hummingbird

extension PoolInfo: ResponseEncodable {}
extension VolumeInfo: ResponseEncodable {}
extension CapacityReport: ResponseEncodable {}
extension PoolList: ResponseEncodable {}
extension VolumeList: ResponseEncodable {}
extension DaemonStatus: ResponseEncodable {}
extension DepotCore.ErrorBody: ResponseEncodable {}
extension SnapshotInfo: ResponseEncodable {}
extension SnapshotList: ResponseEncodable {}
extension JobInfo: ResponseEncodable {}
extension JobList: ResponseEncodable {}
extension JobStarted: ResponseEncodable {}
extension ForeignDiskList: ResponseEncodable {}
