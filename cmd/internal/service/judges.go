package service

import (
	"cmp"
	"math"

	"github.com/rs/zerolog"

	"github.com/noesis-dev/noesis/pipeline"
)

// logJudges logs the judges in force, one line each: name, pillar, weight,
// share of the weights (they need not sum to 1) and target.
func logJudges(log zerolog.Logger, judges []pipeline.Judge) {
	var weights float64
	for _, j := range judges {
		weights += j.Weight
	}
	for _, j := range judges {
		log.Info().Str("judge", j.Name).Str("pillar", j.Pillar).Float64("weight", j.Weight).
			Float64("share", math.Round(j.Weight/weights*1e4)/1e4).Str("target", cmp.Or(j.Target, "REASONING chain")).
			Msg("judge in force")
	}
}
