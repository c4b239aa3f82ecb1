// Package aurora reads what an Apache Aurora scheduler hands a custom executor.
//
// Aurora puts an AssignedTask, encoded with Thrift's binary protocol, into
// TaskInfo.data (field ids from Aurora's api.thrift). Its
// task.executorConfig.data is the pystachio MesosJob (or, from old clients, a
// MesosTaskInstance) rendered as JSON. DecodeAssignedTask reads the first,
// ParseJob the second, with pystachio's defaults applied and Thermos' task
// rules checked, so that a bad task fails with a message naming the field
// before any process starts.
package aurora
