// Package poolplan says what applying changed IPPools and advertisements
// would do to the Services in use, before anything is applied: which
// Services would keep an address outside its pool, which pending Services
// would get an address (and which), and which addresses would be announced
// from other nodes, or from none.
//
// It is pure, and decides nothing itself: it runs the controller's own
// allocation core (controller.Core, over the ipam package) on the claims
// and Services as they are, once with the pools as they are and once with
// the changes, and compares; which nodes an advertisement selects comes
// from Herald's configuration model.
package poolplan
