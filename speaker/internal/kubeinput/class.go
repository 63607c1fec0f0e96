package kubeinput

// ServesClass reports whether a speaker serving loadBalancerClass class
// (empty: Services without a class) handles svc. A Service without a class
// is served by speakers without one; with a class, only by speakers of that
// class, as spec.loadBalancerClass requires.
func ServesClass(svc *CachedService, class string) bool {
	if !svc.HasClass {
		return class == ""
	}
	return svc.Class == class
}
